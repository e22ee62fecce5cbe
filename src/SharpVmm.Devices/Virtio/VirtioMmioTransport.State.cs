using SharpVmm.Core.State;

namespace SharpVmm.Devices.Virtio;

public sealed partial class VirtioMmioTransport : IStateful
{
    public string StateId => "virtio-mmio";
    public int StateVersion => 1;

    /// <summary>Negotiation, status, queues and the interrupt status; the device's own state is its own section.</summary>
    public void SaveState(StateWriter w)
    {
        lock (_lock)
        {
            w.WriteU32(Device.DeviceId);
            w.WriteU64(Device.Features);
            w.WriteU32(_deviceFeaturesSel); w.WriteU32(_driverFeaturesSel); w.WriteU32(_queueSel);
            w.WriteU64(_driverFeatures);
            w.WriteU32((uint)_status);
            w.WriteU32(Volatile.Read(ref _interruptStatus));
            w.WriteU32(Volatile.Read(ref _configGeneration));
            w.WriteBool(_activated);
            w.WriteI32(_queues.Length);
            for (int i = 0; i < _queues.Length; i++) _queues[i].Save(w, $"virtio device {Device.DeviceId} queue {i}");
        }
    }

    public void LoadState(StateReader r, int version)
    {
        lock (_lock)
        {
            uint id = r.ReadU32("device ID");
            if (id != Device.DeviceId) throw r.Error($"the saved transport served virtio device type {id}, this one serves type {Device.DeviceId}");
            ulong offered = r.ReadU64("offered features");
            if (offered != Device.Features)
                throw r.Error($"the saved device offered features 0x{offered:x}, this one offers 0x{Device.Features:x} (different options, e.g. read-only?)");
            _deviceFeaturesSel = r.ReadU32("device features select"); _driverFeaturesSel = r.ReadU32("driver features select");
            _queueSel = r.ReadU32("queue select");
            _driverFeatures = r.ReadU64("driver features");
            if ((_driverFeatures & ~Device.Features) != 0) throw r.Error($"driver features 0x{_driverFeatures:x} include some the device never offered");
            _status = (VirtioStatus)r.ReadU32("device status");
            uint interrupts = r.ReadU32("interrupt status");
            _configGeneration = r.ReadU32("configuration generation");
            bool activated = r.ReadBool("activated");
            int n = r.ReadI32("queue count");
            if (n != _queues.Length) throw r.Error($"the saved device has {n} queues, this one {_queues.Length}");
            foreach (var q in _queues) q.Load(r);
            if (_activated) Device.Reset();
            _activated = activated;
            _context = null;
            if (activated)
            {
                _context = new VirtioDeviceContext(this, _memory, _queues, _driverFeatures);
                Device.Activate(_context);
            }
            lock (_irqLock)
            {
                _interruptStatus = interrupts;
                if (interrupts != 0) _irq.Raise(); else _irq.Lower();
            }
        }
    }
}
