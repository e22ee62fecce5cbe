using System.Security.Cryptography;

namespace SharpVmm.Devices.Virtio.Rng;

/// <summary>virtio-rng (entropy device, ID 4): fills the driver's writable buffers from the host's CSPRNG.</summary>
public sealed partial class VirtioRng : IVirtioDevice
{
    /// <summary>At most this many bytes per request, so one request cannot pin a vCPU generating gigabytes.</summary>
    public const int MaxBytesPerRequest = 64 * 1024;
    public const ushort QueueSize = 256;

    private readonly ChainHandler _handler;
    private VirtioDeviceContext? _context;

    public VirtioRng() => _handler = Fill;

    public uint DeviceId => 4;
    public ulong Features => VirtioFeatures.Common;
    public int QueueCount => 1;
    public ushort MaxQueueSize(int queue) => QueueSize;
    public int ConfigSize => 0;
    public void ReadConfig(int offset, Span<byte> data) { }
    public void WriteConfig(int offset, ReadOnlySpan<byte> data) { }
    public void Activate(VirtioDeviceContext context) => _context = context;
    public void Reset() => _context = null;

    public void QueueNotify(int queue)
    {
        if (_context is { } c) c.Drain(c.Queues[queue], _handler);
    }

    private uint Fill(DescriptorChain chain)
    {
        var memory = _context!.Memory;
        int total = 0;
        foreach (var d in chain.Writable)
        {
            int n = (int)Math.Min(d.Length, (uint)(MaxBytesPerRequest - total));
            if (n == 0) break;
            RandomNumberGenerator.Fill(memory.GetWritableSpan(d.Address, n));
            total += n;
        }
        return (uint)total;
    }
}
