using System.Buffers.Binary;
using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Virtio;
using R = SharpVmm.Devices.Virtio.VirtioMmioRegisters;

namespace SharpVmm.Devices.Tests.Virtio;

internal sealed class LevelLine : IInterruptLine
{
    public bool High;
    public int Raises;
    public void Raise() { High = true; Raises++; }
    public void Lower() => High = false;
    public void Pulse() { Raises++; }
}

/// <summary>Plays the guest driver against a transport with 32-bit register accesses, as Linux's virtio_mmio does.</summary>
internal sealed class MmioDriver(VirtioMmioTransport transport)
{
    public VirtioMmioTransport Transport { get; } = transport;

    public uint Read(uint offset)
    {
        Span<byte> b = stackalloc byte[4];
        Transport.Read(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public void Write(uint offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Transport.Write(offset, b);
    }

    public ulong DeviceFeatures()
    {
        Write(R.DeviceFeaturesSel, 0);
        ulong lo = Read(R.DeviceFeatures);
        Write(R.DeviceFeaturesSel, 1);
        return lo | (ulong)Read(R.DeviceFeatures) << 32;
    }

    public void WriteDriverFeatures(ulong f)
    {
        Write(R.DriverFeaturesSel, 0);
        Write(R.DriverFeatures, (uint)f);
        Write(R.DriverFeaturesSel, 1);
        Write(R.DriverFeatures, (uint)(f >> 32));
    }

    public VirtioStatus Status => (VirtioStatus)Read(R.Status);
    public void SetStatus(VirtioStatus s) => Write(R.Status, (uint)s);

    /// <summary>Reset, ACKNOWLEDGE, DRIVER, features; returns whether FEATURES_OK stuck.</summary>
    public bool Negotiate(ulong features)
    {
        Write(R.Status, 0);
        SetStatus(VirtioStatus.Acknowledge);
        SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver);
        WriteDriverFeatures(features);
        SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
        return (Status & VirtioStatus.FeaturesOk) != 0;
    }

    public void SetupQueue(uint index, ushort size, ulong desc = Ring.Desc, ulong avail = Ring.Avail, ulong used = Ring.Used)
    {
        Write(R.QueueSel, index);
        Write(R.QueueNum, size);
        Write(R.QueueDescLow, (uint)desc); Write(R.QueueDescHigh, (uint)(desc >> 32));
        Write(R.QueueDriverLow, (uint)avail); Write(R.QueueDriverHigh, (uint)(avail >> 32));
        Write(R.QueueDeviceLow, (uint)used); Write(R.QueueDeviceHigh, (uint)(used >> 32));
        Write(R.QueueReady, 1);
    }

    /// <summary>The whole bring-up with queue 0 on <paramref name="ring"/>, accepting everything offered unless told otherwise.</summary>
    public void BringUp(Ring ring, ulong? features = null)
    {
        Assert.True(Negotiate(features ?? DeviceFeatures()));
        SetupQueue(0, ring.Size);
        SetStatus(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
        Assert.Equal(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk, Status);
    }

    public void Notify(uint queue) => Write(R.QueueNotify, queue);
    public uint InterruptStatus => Read(R.InterruptStatus);
    public void Ack(uint bits) => Write(R.InterruptAck, bits);
}
