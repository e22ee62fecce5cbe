using SharpVmm.Core.Interrupts;
using SharpVmm.Core.Io;

namespace SharpVmm.Devices.Testing;

/// <summary>
/// QEMU's pc-testdev (hw/misc/pc-testdev.c), which KVM unit tests use to check I/O emulation and interrupt routing:
/// <list type="bullet">
/// <item>ports 0xE0-0xE3: a 32-bit scratch register, any access width at any byte offset;</item>
/// <item>ports 0xE4-0xE7: "flush page": a 32-bit write of a guest-physical address. QEMU drops and restores the host
/// mapping of that page, which a guest can only see as the page keeping its contents; there is nothing to drop here,
/// so the write is accepted and the page is untouched, which is the same guest-visible result;</item>
/// <item>ports 0xE8-0xEB: the same scratch register through byte-wise accesses;</item>
/// <item>ports 0x2000-0x2017: writing v to 0x2000 + n sets ISA interrupt line n to (v != 0);</item>
/// <item>MMIO 0xFF000000, 64 KiB: scratch memory.</item>
/// </list>
/// </summary>
public sealed class PcTestDev
{
    public const ushort DataPort = 0xE0, FlushPort = 0xE4, ByteDataPort = 0xE8, IrqPort = 0x2000;
    public const ushort IrqLines = 24;
    public const ulong IomemBase = 0xFF00_0000;
    public const int IomemSize = 0x1_0000;

    private uint _data;
    private readonly byte[] _iomem = new byte[IomemSize];
    private readonly IIrqRouter? _irqs;

    public PcTestDev(IIrqRouter? irqs)
    {
        _irqs = irqs;
        Data = new DataRegister(this);
        Flush = new FlushRegister();
        Irq = new IrqWindow(this);
        Iomem = new Scratch(_iomem);
    }

    public IIoDevice Data { get; }
    public IIoDevice Flush { get; }
    public IIoDevice Irq { get; }
    public IIoDevice Iomem { get; }

    /// <summary>Flush-page writes seen (addresses only matter to QEMU's host side).</summary>
    public int Flushes => ((FlushRegister)Flush).Count;

    private sealed class DataRegister(PcTestDev d) : IIoDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            uint v = Volatile.Read(ref d._data);
            for (int i = 0; i < data.Length; i++)
            {
                int b = (int)(offset & 3) + i;
                data[i] = b < 4 ? (byte)(v >> (8 * b)) : (byte)0;
            }
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            lock (this)
            {
                uint v = d._data;
                for (int i = 0; i < data.Length; i++)
                {
                    int b = (int)(offset & 3) + i;
                    if (b >= 4) break;
                    v = (v & ~(0xFFu << (8 * b))) | ((uint)data[i] << (8 * b));
                }
                Volatile.Write(ref d._data, v);
            }
        }
    }

    private sealed class FlushRegister : IIoDevice
    {
        private int _count;
        public int Count => Volatile.Read(ref _count);
        public void Read(ulong offset, Span<byte> data) => data.Fill(0xFF);

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            if (offset == 0 && data.Length == 4) Interlocked.Increment(ref _count); // QEMU accepts only 32-bit writes
        }
    }

    private sealed class IrqWindow(PcTestDev d) : IIoDevice
    {
        public void Read(ulong offset, Span<byte> data) => data.Fill(0xFF);

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            // One line per port and one byte per line (QEMU's window takes byte writes only).
            if (data.Length != 1 || offset >= IrqLines) return;
            d._irqs?.SetIrq((int)offset, data[0] != 0);
        }
    }

    private sealed class Scratch(byte[] mem) : IIoDevice
    {
        public void Read(ulong offset, Span<byte> data)
        {
            lock (mem) mem.AsSpan((int)offset, data.Length).CopyTo(data);
        }

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            lock (mem) data.CopyTo(mem.AsSpan((int)offset, data.Length));
        }
    }
}
