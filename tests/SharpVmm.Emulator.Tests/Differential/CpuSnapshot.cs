using System.Text;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>The register state a sequence sees and leaves: what both runners load and store.</summary>
internal sealed class CpuSnapshot
{
    public const ulong CF = 1UL << 0, PF = 1UL << 2, AF = 1UL << 4, ZF = 1UL << 6, SF = 1UL << 7, DF = 1UL << 10, OF = 1UL << 11;
    public const ulong StatusFlags = CF | PF | AF | ZF | SF | OF;

    public static readonly string[] GprNames =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    public ulong[] Gprs { get; } = new ulong[16];
    public ulong Rflags { get; set; } = 0x2;
    public uint Mxcsr { get; set; } = 0x1F80;
    /// <summary>XMM0..15, 16 bytes each, little endian.</summary>
    public byte[] Xmm { get; } = new byte[256];

    public CpuSnapshot Clone()
    {
        var c = new CpuSnapshot { Rflags = Rflags, Mxcsr = Mxcsr };
        Gprs.CopyTo(c.Gprs, 0);
        Xmm.CopyTo(c.Xmm, 0);
        return c;
    }

    public ulong XmmLow(int i) => BitConverter.ToUInt64(Xmm, i * 16);
    public ulong XmmHigh(int i) => BitConverter.ToUInt64(Xmm, i * 16 + 8);

    public unsafe void WriteTo(byte* block)
    {
        for (int i = 0; i < 16; i++) ((ulong*)(block + DiffLayout.GprOffset))[i] = Gprs[i];
        *(ulong*)(block + DiffLayout.RflagsOffset) = Rflags;
        *(uint*)(block + DiffLayout.MxcsrOffset) = Mxcsr;
        Xmm.CopyTo(new Span<byte>(block + DiffLayout.XmmOffset, 256));
    }

    public static unsafe CpuSnapshot ReadFrom(byte* block)
    {
        var s = new CpuSnapshot
        {
            Rflags = *(ulong*)(block + DiffLayout.RflagsOffset),
            Mxcsr = *(uint*)(block + DiffLayout.MxcsrOffset),
        };
        for (int i = 0; i < 16; i++) s.Gprs[i] = ((ulong*)(block + DiffLayout.GprOffset))[i];
        new ReadOnlySpan<byte>(block + DiffLayout.XmmOffset, 256).CopyTo(s.Xmm);
        return s;
    }

    public static string FlagsText(ulong f)
    {
        var sb = new StringBuilder();
        sb.Append($"0x{f:x}[");
        if ((f & CF) != 0) sb.Append(" CF");
        if ((f & PF) != 0) sb.Append(" PF");
        if ((f & AF) != 0) sb.Append(" AF");
        if ((f & ZF) != 0) sb.Append(" ZF");
        if ((f & SF) != 0) sb.Append(" SF");
        if ((f & DF) != 0) sb.Append(" DF");
        if ((f & OF) != 0) sb.Append(" OF");
        sb.Append(" ]");
        return sb.ToString();
    }

    public string Describe(bool withXmm)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < 16; i++)
        {
            sb.Append($"{GprNames[i],3}=0x{Gprs[i]:x16}");
            sb.Append(i % 4 == 3 ? "\n" : "  ");
        }
        sb.Append($"rflags={FlagsText(Rflags)} mxcsr=0x{Mxcsr:x}\n");
        if (withXmm)
            for (int i = 0; i < 16; i++)
            {
                sb.Append($"xmm{i,-2}=0x{XmmHigh(i):x16}_{XmmLow(i):x16}");
                sb.Append(i % 2 == 1 ? "\n" : "  ");
            }
        return sb.ToString();
    }
}
