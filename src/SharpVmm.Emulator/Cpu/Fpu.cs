namespace SharpVmm.Emulator;

/// <summary>
/// x87 and SSE register state. x87 values are kept as doubles (enough for glibc's uses: control word handling,
/// conversions, basic arithmetic) and converted to and from the 80-bit format at FXSAVE/FXRSTOR and state I/O.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    /// <summary>XMM0..15, two ulongs each (plus a 16-byte scratch slot).</summary>
    public readonly ulong* Xmm;
    public uint Mxcsr = 0x1F80;
    public ushort Fcw = 0x37F, Fsw;
    /// <summary>Abridged tag: bit i set = physical register i holds a value.</summary>
    public byte Ftw;
    public readonly double[] Fpr = new double[8];
    public ushort FpuLastOpcode;
    public ulong FpuLastIp, FpuLastDp;

    /// <summary>MMn = mantissa of x87 physical register n (kept beside the double view of the same register).</summary>
    public readonly ulong[] Mmx = new ulong[8];

    public ulong ReadMmx(int i)
    {
        EnterMmxMode();
        return Mmx[i & 7];
    }

    public void WriteMmx(int i, ulong v)
    {
        EnterMmxMode();
        Mmx[i & 7] = v;
        Fpr[i & 7] = double.NaN; // exponent all ones: an x87 read of an MMX value sees a NaN, as on hardware
    }

    /// <summary>Any MMX instruction: TOP = 0 and all registers tagged valid.</summary>
    public void EnterMmxMode()
    {
        FpuTop = 0;
        Ftw = 0xFF;
    }

    public int FpuTop
    {
        get => (Fsw >> 11) & 7;
        set => Fsw = (ushort)((Fsw & ~0x3800) | ((value & 7) << 11));
    }

    public void ResetFpu()
    {
        Fcw = 0x37F; Fsw = 0; Ftw = 0;
        Array.Clear(Fpr);
        Array.Clear(Mmx);
        FpuLastOpcode = 0; FpuLastIp = FpuLastDp = 0;
        Mxcsr = 0x1F80;
        for (int i = 0; i < 34; i++) Xmm[i] = 0;
    }

    /// <summary>FXSAVE image (512 bytes, 64-bit layout).</summary>
    public void Fxsave(ulong la)
    {
        if ((la & 15) != 0) throw Gp();
        // Probe the whole area first so a fault leaves memory untouched.
        Translate(la, AccWrite, UserBit != 0);
        Translate((la + 511) & LinMask, AccWrite, UserBit != 0);
        SaveX87(la);
        SaveMxcsr(la);
        SaveXmm(la);
    }

    public void Fxrstor(ulong la)
    {
        if ((la & 15) != 0) throw Gp();
        uint mx = Read32(la + 24);
        if ((mx & 0xFFFF_0000) != 0) throw Gp();
        RestoreX87(la);
        Mxcsr = mx;
        RestoreXmm(la);
    }

    /// <summary>The x87 part of the FXSAVE layout (bytes 0-23 and 32-159): control, status, tags, last op, ST0-ST7.</summary>
    private void SaveX87(ulong la)
    {
        Write16(la, Fcw);
        Write16(la + 2, Fsw);
        Write8(la + 4, Ftw);
        Write8(la + 5, 0);
        Write16(la + 6, FpuLastOpcode);
        Write64(la + 8, FpuLastIp);
        Write64(la + 16, FpuLastDp);
        Span<byte> ext = stackalloc byte[10];
        for (int i = 0; i < 8; i++)
        {
            int phys = (FpuTop + i) & 7;
            ToExtended(Fpr[phys], ext);
            if (double.IsNaN(Fpr[phys])) { BitConverter.TryWriteBytes(ext, Mmx[phys]); ext[8] = 0xFF; ext[9] = 0xFF; }
            ulong a = la + 32 + (ulong)i * 16;
            for (int k = 0; k < 10; k++) Write8(a + (ulong)k, ext[k]);
            for (int k = 10; k < 16; k++) Write8(a + (ulong)k, 0);
        }
    }

    /// <summary>MXCSR and MXCSR_MASK (bytes 24-31).</summary>
    private void SaveMxcsr(ulong la)
    {
        Write32(la + 24, Mxcsr);
        Write32(la + 28, 0xFFFF); // MXCSR_MASK: every defined bit writable
    }

    /// <summary>XMM0-XMM15 (bytes 160-415).</summary>
    private void SaveXmm(ulong la)
    {
        for (int i = 0; i < 16; i++)
        {
            Write64(la + 160 + (ulong)i * 16, Xmm[i * 2]);
            Write64(la + 168 + (ulong)i * 16, Xmm[i * 2 + 1]);
        }
    }

    private void RestoreX87(ulong la)
    {
        Fcw = Read16(la);
        Fsw = Read16(la + 2);
        Ftw = Read8(la + 4);
        FpuLastOpcode = Read16(la + 6);
        FpuLastIp = Read64(la + 8);
        FpuLastDp = Read64(la + 16);
        Span<byte> ext = stackalloc byte[10];
        for (int i = 0; i < 8; i++)
        {
            ulong a = la + 32 + (ulong)i * 16;
            for (int k = 0; k < 10; k++) ext[k] = Read8(a + (ulong)k);
            Fpr[(FpuTop + i) & 7] = FromExtended(ext);
            Mmx[(FpuTop + i) & 7] = BitConverter.ToUInt64(ext);
        }
    }

    private void RestoreXmm(ulong la)
    {
        for (int i = 0; i < 16; i++)
        {
            Xmm[i * 2] = Read64(la + 160 + (ulong)i * 16);
            Xmm[i * 2 + 1] = Read64(la + 168 + (ulong)i * 16);
        }
    }

    /// <summary>The x87 state XRSTOR loads for a component marked "init" in XSTATE_BV (as FNINIT, plus zeroed registers).</summary>
    private void InitX87()
    {
        Fcw = 0x37F; Fsw = 0; Ftw = 0;
        FpuLastOpcode = 0; FpuLastIp = FpuLastDp = 0;
        Array.Clear(Fpr);
        Array.Clear(Mmx);
    }

    /// <summary>double → 80-bit extended (exact: every double is representable).</summary>
    public static void ToExtended(double v, Span<byte> dst)
    {
        ulong bits = BitConverter.DoubleToUInt64Bits(v);
        ulong sign = bits >> 63;
        int exp = (int)((bits >> 52) & 0x7FF);
        ulong frac = bits & 0xF_FFFF_FFFF_FFFFUL;
        ulong mant;
        int e;
        if (exp == 0 && frac == 0) { mant = 0; e = 0; }
        else if (exp == 0x7FF) { mant = (1UL << 63) | (frac << 11); e = 0x7FFF; }
        else if (exp == 0)
        {
            // Subnormal double: normalize into the wider exponent range.
            int shift = System.Numerics.BitOperations.LeadingZeroCount(frac) - 11;
            mant = (frac << (11 + shift));
            e = 1 - 1023 + 16383 - shift;
        }
        else { mant = (1UL << 63) | (frac << 11); e = exp - 1023 + 16383; }
        BitConverter.TryWriteBytes(dst, mant);
        ushort se = (ushort)((sign << 15) | (uint)e);
        dst[8] = (byte)se;
        dst[9] = (byte)(se >> 8);
    }

    /// <summary>80-bit extended → double (rounded to nearest).</summary>
    public static double FromExtended(ReadOnlySpan<byte> src)
    {
        ulong mant = BitConverter.ToUInt64(src);
        int se = src[8] | (src[9] << 8);
        bool neg = (se & 0x8000) != 0;
        int e = se & 0x7FFF;
        double r;
        if (e == 0 && mant == 0) r = 0;
        else if (e == 0x7FFF) r = (mant << 1) == 0 ? double.PositiveInfinity : double.NaN;
        else r = Math.ScaleB((double)mant, e - 16383 - 63);
        return neg ? -r : r;
    }
}
