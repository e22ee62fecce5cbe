using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpVmm.Core.Io;

namespace SharpVmm.Devices.Bus;

/// <summary>
/// The port and MMIO buses. Devices register windows while the machine is built; an overlap throws
/// <see cref="BusConflictException"/> then, not at run time. Guest accesses from any vCPU thread are
/// dispatched lock-free: ports through a 64 Ki-entry table, MMIO through binary search over a sorted,
/// copy-on-write array. Nothing a device or the guest does escapes as an exception to the accelerator.
/// </summary>
public sealed class IoBus : IIoBus
{
    private readonly object _registerLock = new();
    private readonly ILogger _log;
    // Port table: index into _portRanges + 1 (0 = unmapped). 128 KiB, and a port access is one load.
    private readonly ushort[] _portIndex = new ushort[0x10000];
    private IoRange[] _portRanges = [];
    private IoRange[] _mmioRanges = []; // sorted by Base, never mutated after publication
    private long _unmappedCount;

    public IoBus(ILogger? logger = null) => _log = logger ?? NullLogger.Instance;

    public UnmappedAccessPolicy UnmappedPolicy { get; set; } = UnmappedAccessPolicy.Ignore;

    /// <summary>Raised (on the vCPU thread) when the VM must stop: a device threw, or an unmapped access under <see cref="UnmappedAccessPolicy.Stop"/>.</summary>
    public Action<IoBusFault>? Fault { get; set; }

    /// <summary>Guest accesses that hit no device, since the bus was made.</summary>
    public long UnmappedAccessCount => Interlocked.Read(ref _unmappedCount);

    public IReadOnlyList<IoRange> PortRanges => _portRanges;
    public IReadOnlyList<IoRange> MmioRanges => _mmioRanges;

    public void RegisterPort(ushort basePort, ushort length, IIoDevice device, string name)
    {
        if (length == 0 || basePort + length > 0x10000)
            throw new BusConflictException($"{name}: port range 0x{basePort:x}+{length} is empty or past 0xFFFF");
        lock (_registerLock)
        {
            for (int p = basePort; p < basePort + length; p++)
                if (_portIndex[p] != 0)
                    throw new BusConflictException($"{name} at port 0x{basePort:x}-0x{basePort + length - 1:x} overlaps {_portRanges[_portIndex[p] - 1]}");
            var range = new IoRange(IoSpace.Port, basePort, length, device, name);
            _portRanges = [.. _portRanges, range];
            ushort idx = (ushort)_portRanges.Length;
            for (int p = basePort; p < basePort + length; p++) _portIndex[p] = idx;
        }
    }

    public void RegisterMmio(ulong baseAddress, ulong length, IIoDevice device, string name)
    {
        if (length == 0 || baseAddress + length < baseAddress)
            throw new BusConflictException($"{name}: MMIO range 0x{baseAddress:x}+0x{length:x} is empty or wraps");
        lock (_registerLock)
        {
            var range = new IoRange(IoSpace.Mmio, baseAddress, length, device, name);
            foreach (var r in _mmioRanges)
                if (baseAddress < r.End && r.Base < range.End)
                    throw new BusConflictException($"{range} overlaps {r}");
            var next = new IoRange[_mmioRanges.Length + 1];
            int i = 0, j = 0;
            while (i < _mmioRanges.Length && _mmioRanges[i].Base < baseAddress) next[j++] = _mmioRanges[i++];
            next[j++] = range;
            while (i < _mmioRanges.Length) next[j++] = _mmioRanges[i++];
            Volatile.Write(ref _mmioRanges, next);
        }
    }

    /// <summary>The window claiming <paramref name="address"/> in <paramref name="space"/>, or null.</summary>
    public IoRange? Find(IoSpace space, ulong address)
    {
        if (space == IoSpace.Port)
            return address <= 0xFFFF && _portIndex[address] is var i and not 0 ? _portRanges[i - 1] : null;
        return FindMmio(address);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private IoRange? FindMmio(ulong address)
    {
        var ranges = Volatile.Read(ref _mmioRanges);
        int lo = 0, hi = ranges.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var r = ranges[mid];
            if (address < r.Base) hi = mid - 1;
            else if (address >= r.End) lo = mid + 1;
            else return r;
        }
        return null;
    }

    public void PioRead(ushort port, Span<byte> data)
    {
        int i = _portIndex[port];
        if (i != 0)
        {
            var r = _portRanges[i - 1];
            if (r.Contains(port, (ulong)data.Length)) { Read(r, port - r.Base, data); return; }
            PioReadSplit(port, data);
            return;
        }
        Unmapped(IoSpace.Port, port, data.Length, isWrite: false);
        data.Fill(0xFF);
    }

    public void PioWrite(ushort port, ReadOnlySpan<byte> data)
    {
        int i = _portIndex[port];
        if (i != 0)
        {
            var r = _portRanges[i - 1];
            if (r.Contains(port, (ulong)data.Length)) { Write(r, port - r.Base, data); return; }
            PioWriteSplit(port, data);
            return;
        }
        Unmapped(IoSpace.Port, port, data.Length, isWrite: true);
    }

    /// <summary>
    /// An access that starts in a window but runs past its end (<c>out 0xF4, eax</c> to a one-port device) is split
    /// into the pieces each port's owner claims, as the ISA bus sizes a wide cycle down to byte cycles: every device
    /// sees only bytes inside its own window, and bytes on ports nobody claims read as all ones and are dropped.
    /// </summary>
    private void PioReadSplit(ushort port, Span<byte> data)
    {
        data.Fill(0xFF);
        int off = 0;
        while (off < data.Length && port + off <= 0xFFFF)
        {
            int p = port + off;
            int i = _portIndex[p];
            if (i == 0) { off++; continue; }
            var r = _portRanges[i - 1];
            int n = (int)Math.Min((ulong)(data.Length - off), r.End - (ulong)p);
            Read(r, (ulong)p - r.Base, data.Slice(off, n));
            off += n;
        }
    }

    private void PioWriteSplit(ushort port, ReadOnlySpan<byte> data)
    {
        int off = 0;
        while (off < data.Length && port + off <= 0xFFFF)
        {
            int p = port + off;
            int i = _portIndex[p];
            if (i == 0) { off++; continue; }
            var r = _portRanges[i - 1];
            int n = (int)Math.Min((ulong)(data.Length - off), r.End - (ulong)p);
            Write(r, (ulong)p - r.Base, data.Slice(off, n));
            off += n;
        }
    }

    public void MmioRead(ulong address, Span<byte> data)
    {
        var r = FindMmio(address);
        if (r is not null && r.Contains(address, (ulong)data.Length)) { Read(r, address - r.Base, data); return; }
        Unmapped(IoSpace.Mmio, address, data.Length, isWrite: false);
        data.Fill(0xFF);
    }

    public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
    {
        var r = FindMmio(address);
        if (r is not null && r.Contains(address, (ulong)data.Length)) { Write(r, address - r.Base, data); return; }
        Unmapped(IoSpace.Mmio, address, data.Length, isWrite: true);
    }

    private void Read(IoRange r, ulong offset, Span<byte> data)
    {
        try
        {
            r.Device.Read(offset, data);
        }
        catch (Exception ex)
        {
            data.Fill(0xFF);
            DeviceFailed(r, offset, data.Length, "read", ex);
        }
    }

    private void Write(IoRange r, ulong offset, ReadOnlySpan<byte> data)
    {
        try
        {
            r.Device.Write(offset, data);
        }
        catch (Exception ex)
        {
            DeviceFailed(r, offset, data.Length, "write", ex);
        }
    }

    private void DeviceFailed(IoRange r, ulong offset, int size, string op, Exception ex)
    {
        string msg = $"device {r.Name} failed on a {size}-byte {op} at offset 0x{offset:x}: {ex.Message}";
        _log.LogError(ex, "{Message}", msg);
        Fault?.Invoke(new IoBusFault(IoBusFaultKind.DeviceError, msg, ex));
    }

    private void Unmapped(IoSpace space, ulong address, int size, bool isWrite)
    {
        long n = Interlocked.Increment(ref _unmappedCount);
        string what = space == IoSpace.Port ? $"port 0x{address:x}" : $"address 0x{address:x}";
        string msg = $"guest {(isWrite ? "wrote" : "read")} {size} byte(s) at {what}, which no device claims";
        // Guests probe for absent hardware all the time (Linux reads PCI config ports on every boot): that is
        // debug information, as in QEMU (-d unimp). The first few, then every 4096th, to bound the cost.
        if (n <= 16 || (n & 4095) == 0) _log.LogDebug("{Message} (unmapped access #{Count})", msg, n);
        if (UnmappedPolicy == UnmappedAccessPolicy.Stop)
            Fault?.Invoke(new IoBusFault(IoBusFaultKind.UnmappedAccess, msg));
    }
}
