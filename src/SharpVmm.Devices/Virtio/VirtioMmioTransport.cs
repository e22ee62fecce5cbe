using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;
using SharpVmm.Memory;
using R = SharpVmm.Devices.Virtio.VirtioMmioRegisters;

namespace SharpVmm.Devices.Virtio;

/// <summary>
/// The virtio-mmio transport (version 2) for one <see cref="IVirtioDevice"/>: register it on the MMIO bus with a
/// <see cref="VirtioMmioRegisters.WindowSize"/>-byte window. Register accesses from any vCPU are serialised by one
/// lock, and queue notifications are served synchronously on the notifying vCPU's thread inside it. Anything the
/// device throws while serving the guest becomes DEVICE_NEEDS_RESET plus a configuration-change interrupt; nothing
/// escapes to the bus. The interrupt is level: the line is high while InterruptStatus is non-zero.
/// </summary>
public sealed partial class VirtioMmioTransport : IIoDevice
{
    public const uint InterruptUsedBuffer = 1, InterruptConfigChange = 2;

    private readonly object _lock = new();
    private readonly object _irqLock = new();
    private readonly GuestMemory _memory;
    private readonly IInterruptLine _irq;
    private readonly ILogger _log;
    private readonly Virtqueue[] _queues;
    private uint _deviceFeaturesSel, _driverFeaturesSel, _queueSel;
    private ulong _driverFeatures;
    private VirtioStatus _status;
    private uint _interruptStatus;
    private uint _configGeneration;
    private bool _activated;
    private VirtioDeviceContext? _context;

    public VirtioMmioTransport(IVirtioDevice device, GuestMemory memory, IInterruptLine irq, ILogger? logger = null)
    {
        if ((device.Features & VirtioFeatures.Version1) == 0)
            throw new ArgumentException($"virtio device {device.DeviceId} does not offer VIRTIO_F_VERSION_1", nameof(device));
        Device = device;
        _memory = memory;
        _irq = irq;
        _log = logger ?? NullLogger.Instance;
        _queues = new Virtqueue[device.QueueCount];
        for (int i = 0; i < _queues.Length; i++) _queues[i] = new Virtqueue(memory, device.MaxQueueSize(i));
    }

    public IVirtioDevice Device { get; }
    public VirtioStatus Status { get { lock (_lock) return _status; } }
    public uint InterruptStatus => Volatile.Read(ref _interruptStatus);
    public ulong DriverFeatures { get { lock (_lock) return _driverFeatures; } }
    public uint ConfigGeneration => Volatile.Read(ref _configGeneration);
    /// <summary>Why the device last asked for a reset, for diagnostics; null when it has not.</summary>
    public Exception? LastError { get; private set; }
    public IReadOnlyList<Virtqueue> Queues => _queues;

    public void Read(ulong offset, Span<byte> data)
    {
        data.Clear();
        if (offset >= R.Config)
        {
            ReadConfig(offset - R.Config, data);
            return;
        }
        if (data.Length != 4 || (offset & 3) != 0) return; // the spec allows only aligned 32-bit register access
        uint value;
        // Interrupt handlers on other vCPUs read InterruptStatus while one vCPU may be inside a long block request.
        if (offset == R.InterruptStatus) value = Volatile.Read(ref _interruptStatus);
        else lock (_lock) value = ReadRegister((uint)offset);
        BinaryPrimitives.WriteUInt32LittleEndian(data, value);
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset >= R.Config)
        {
            lock (_lock)
            {
                ulong off = offset - R.Config;
                int size = Device.ConfigSize;
                if (off >= (ulong)size) return;
                int n = (int)Math.Min((ulong)data.Length, (ulong)size - off);
                try { Device.WriteConfig((int)off, data[..n]); } catch (Exception e) { Fail(e); }
            }
            return;
        }
        if (data.Length != 4 || (offset & 3) != 0) return;
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(data);
        lock (_lock) WriteRegister((uint)offset, value);
    }

    private void ReadConfig(ulong off, Span<byte> data)
    {
        int size = Device.ConfigSize;
        if (off >= (ulong)size) return;
        int n = (int)Math.Min((ulong)data.Length, (ulong)size - off);
        lock (_lock)
        {
            try { Device.ReadConfig((int)off, data[..n]); } catch (Exception e) { Fail(e); }
        }
    }

    private Virtqueue? SelectedQueue => _queueSel < _queues.Length ? _queues[_queueSel] : null;

    private uint ReadRegister(uint offset)
    {
        switch (offset)
        {
            case R.MagicValue: return R.Magic;
            case R.Version: return 2;
            case R.DeviceId: return Device.DeviceId;
            case R.VendorId: return R.SharpVmmVendor;
            case R.DeviceFeatures:
                return _deviceFeaturesSel switch
                {
                    0 => (uint)Device.Features,
                    1 => (uint)(Device.Features >> 32),
                    _ => 0,
                };
            case R.QueueNumMax: return SelectedQueue?.MaxSize ?? 0u;
            case R.QueueReady: return SelectedQueue is { IsActive: true } ? 1u : 0u;
            case R.InterruptStatus: return Volatile.Read(ref _interruptStatus);
            case R.Status: return (uint)_status;
            case R.ShmLenLow or R.ShmLenHigh or R.ShmBaseLow or R.ShmBaseHigh: return uint.MaxValue; // no shared memory regions
            case R.ConfigGeneration: return Volatile.Read(ref _configGeneration);
            default: return 0;
        }
    }

    private void WriteRegister(uint offset, uint value)
    {
        var q = SelectedQueue;
        bool queueWritable = q is { IsActive: false } && (_status & VirtioStatus.DeviceNeedsReset) == 0;
        switch (offset)
        {
            case R.DeviceFeaturesSel: _deviceFeaturesSel = value; break;
            case R.DriverFeaturesSel: _driverFeaturesSel = value; break;
            case R.DriverFeatures:
                if ((_status & VirtioStatus.FeaturesOk) != 0 || _driverFeaturesSel > 1) break; // frozen once accepted
                int shift = (int)_driverFeaturesSel * 32;
                _driverFeatures = (_driverFeatures & ~(0xFFFF_FFFFUL << shift)) | ((ulong)value << shift);
                break;
            case R.QueueSel: _queueSel = value; break;
            case R.QueueNum: if (queueWritable) q!.Size = value > 0xFFFF ? (ushort)0 : (ushort)value; break;
            case R.QueueDescLow: if (queueWritable) q!.DescTableAddress = SetLow(q.DescTableAddress, value); break;
            case R.QueueDescHigh: if (queueWritable) q!.DescTableAddress = SetHigh(q.DescTableAddress, value); break;
            case R.QueueDriverLow: if (queueWritable) q!.AvailRingAddress = SetLow(q.AvailRingAddress, value); break;
            case R.QueueDriverHigh: if (queueWritable) q!.AvailRingAddress = SetHigh(q.AvailRingAddress, value); break;
            case R.QueueDeviceLow: if (queueWritable) q!.UsedRingAddress = SetLow(q.UsedRingAddress, value); break;
            case R.QueueDeviceHigh: if (queueWritable) q!.UsedRingAddress = SetHigh(q.UsedRingAddress, value); break;
            case R.QueueReady: SetQueueReady(q, value); break;
            case R.QueueNotify: Notify(value); break;
            case R.InterruptAck: AckInterrupt(value); break;
            case R.Status: WriteStatus(value); break;
        }
    }

    private static ulong SetLow(ulong v, uint low) => (v & 0xFFFF_FFFF_0000_0000) | low;
    private static ulong SetHigh(ulong v, uint high) => (v & 0xFFFF_FFFF) | ((ulong)high << 32);

    private void SetQueueReady(Virtqueue? q, uint value)
    {
        if (q is null) return;
        if (value == 0)
        {
            q.Reset(); // the driver stops using the queue and programs it afresh
            return;
        }
        if (q.IsActive || (_status & VirtioStatus.FeaturesOk) == 0 || (_status & VirtioStatus.DeviceNeedsReset) != 0) return;
        try { q.Activate(_driverFeatures); } catch (Exception e) { Fail(e); }
    }

    private void Notify(uint index)
    {
        if ((_status & (VirtioStatus.DriverOk | VirtioStatus.DeviceNeedsReset)) != VirtioStatus.DriverOk) return;
        if (index >= _queues.Length || !_queues[index].IsActive) return;
        try { Device.QueueNotify((int)index); } catch (Exception e) { Fail(e); }
    }

    private void WriteStatus(uint value)
    {
        if (value == 0)
        {
            ResetDevice();
            return;
        }
        var requested = (VirtioStatus)value & ~VirtioStatus.DeviceNeedsReset; // only the device sets that bit
        var added = requested & ~_status;
        if ((_status & ~requested & ~VirtioStatus.DeviceNeedsReset) != 0)
            _log.LogWarning("virtio-mmio device {Id}: the driver tried to clear status bits (0x{Old:x} -> 0x{New:x}); ignored",
                Device.DeviceId, (uint)_status, value);
        if ((added & VirtioStatus.FeaturesOk) != 0 && !FeaturesAcceptable())
            added &= ~VirtioStatus.FeaturesOk;
        if ((added & VirtioStatus.DriverOk) != 0 && ((_status | added) & VirtioStatus.FeaturesOk) == 0)
            added &= ~VirtioStatus.DriverOk;
        _status |= added;
        if ((added & VirtioStatus.DriverOk) != 0 && (_status & VirtioStatus.DeviceNeedsReset) == 0)
        {
            _activated = true;
            _context = new VirtioDeviceContext(this, _memory, _queues, _driverFeatures);
            try { Device.Activate(_context); } catch (Exception e) { Fail(e); }
        }
    }

    private bool FeaturesAcceptable()
    {
        if ((_status & VirtioStatus.Driver) == 0) return false;
        ulong unoffered = _driverFeatures & ~Device.Features;
        if (unoffered != 0)
        {
            _log.LogWarning("virtio-mmio device {Id}: the driver accepted features 0x{F:x} that were not offered; FEATURES_OK refused",
                Device.DeviceId, unoffered);
            return false;
        }
        // Only the modern (1.x) interface is implemented.
        return (_driverFeatures & VirtioFeatures.Version1) != 0;
    }

    private void ResetDevice()
    {
        if (_activated) Device.Reset();
        _activated = false;
        _context = null;
        foreach (var q in _queues) q.Reset();
        _status = VirtioStatus.None;
        _driverFeatures = 0;
        _deviceFeaturesSel = _driverFeaturesSel = _queueSel = 0;
        LastError = null;
        lock (_irqLock)
        {
            _interruptStatus = 0;
            _irq.Lower();
        }
    }

    private void AckInterrupt(uint bits)
    {
        lock (_irqLock)
        {
            _interruptStatus &= ~bits;
            if (_interruptStatus == 0) _irq.Lower();
        }
    }

    internal void RaiseInterrupt(uint bits)
    {
        lock (_irqLock)
        {
            _interruptStatus |= bits;
            _irq.Raise();
        }
    }

    internal void RunExclusive(VirtioDeviceContext context, Action<VirtioDeviceContext> work)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(context, _context) || (_status & VirtioStatus.DeviceNeedsReset) != 0) return;
            try { work(context); } catch (Exception e) { Fail(e); }
        }
    }

    internal void ConfigChanged()
    {
        Interlocked.Increment(ref _configGeneration);
        RaiseInterrupt(InterruptConfigChange);
    }

    // Guest-triggered device work that failed parks the device in DEVICE_NEEDS_RESET instead of escaping.
    private void Fail(Exception e)
    {
        LastError = e;
        if (e is VirtqueueException or VirtioProtocolException)
            _log.LogWarning("virtio-mmio device {Id} needs a reset: {Message}", Device.DeviceId, e.Message);
        else
            _log.LogError(e, "virtio-mmio device {Id} failed and needs a reset: {Message}", Device.DeviceId, e.Message);
        _status |= VirtioStatus.DeviceNeedsReset;
        ConfigChanged();
    }
}
