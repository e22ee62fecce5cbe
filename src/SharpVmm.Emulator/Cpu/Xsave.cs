using static SharpVmm.Core.Cpu.ControlBits;

namespace SharpVmm.Emulator;

/// <summary>
/// XSAVE with the components this CPU has: x87 (bit 0), SSE (bit 1) and PKRU (bit 9). XCR0 says which the OS enabled
/// (XSETBV); XSAVE/XSAVEOPT store the requested ones in the standard (non-compacted) layout CPUID leaf 0xD describes:
/// the 512-byte legacy region as FXSAVE lays it out, the 64-byte header whose XSTATE_BV marks the stored components,
/// then PKRU (4 bytes and 4 reserved) at offset 576. XRSTOR loads each requested component from memory, or its
/// initial state (PKRU 0) when XSTATE_BV says so.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    public const int XcrPkruBit = 9;
    public const ulong XcrPkru = 1UL << XcrPkruBit;
    public const ulong XcrSupported = 3 | XcrPkru; // x87 | SSE | PKRU
    public const uint XsaveAreaSize = 512 + 64;    // legacy region + header
    public const uint XsavePkruOffset = XsaveAreaSize;

    /// <summary>The standard-format area size for the components in <paramref name="xcr0"/> (CPUID 0xD.0 EBX/ECX).</summary>
    public static uint XsaveAreaSizeFor(ulong xcr0) => (xcr0 & XcrPkru) != 0 ? XsavePkruOffset + 8 : XsaveAreaSize;

    public ulong Xcr0 = 1;

    private void RequireOsxsave()
    {
        if ((Cr4 & Cr4Osxsave) == 0) throw Ud();
    }

    public ulong Xgetbv(uint index)
    {
        RequireOsxsave();
        if (index != 0) throw Gp(); // XINUSE (ECX = 1) is not advertised
        return Xcr0;
    }

    public void Xsetbv(uint index, ulong value)
    {
        RequireOsxsave();
        if (ProtectedMode && Cpl != 0) throw Gp();
        if (index != 0 || (value & 1) == 0 || (value & ~XcrSupported) != 0) throw Gp();
        Xcr0 = value;
    }

    /// <summary>XSAVE / XSAVEOPT (which may skip unmodified state; storing it all is one of its allowed outcomes).</summary>
    public void Xsave(ulong la, ulong mask)
    {
        RequireOsxsave();
        if ((la & 63) != 0) throw Gp();
        ulong rfbm = mask & Xcr0;
        // Probe the area first so a fault leaves memory untouched.
        Translate(la, AccWrite, UserBit != 0);
        Translate((la + XsaveAreaSizeFor(rfbm) - 1) & LinMask, AccWrite, UserBit != 0);
        if ((rfbm & 1) != 0) SaveX87(la);
        if ((rfbm & 2) != 0)
        {
            SaveMxcsr(la);
            SaveXmm(la);
        }
        if ((rfbm & XcrPkru) != 0) Write64((la + XsavePkruOffset) & LinMask, Pkru);
        // XSTATE_BV: the stored components are marked in use (tracking them conservatively); others keep their bits.
        ulong bv = Read64((la + 512) & LinMask);
        Write64((la + 512) & LinMask, (bv & ~rfbm) | rfbm);
    }

    public void Xrstor(ulong la, ulong mask)
    {
        RequireOsxsave();
        if ((la & 63) != 0) throw Gp();
        ulong rfbm = mask & Xcr0;
        ulong bv = Read64((la + 512) & LinMask);
        ulong xcomp = Read64((la + 520) & LinMask);
        // Standard form only (no XSAVEC): XCOMP_BV zero, the rest of the header zero, no component outside XCR0.
        if (xcomp != 0 || (bv & ~Xcr0) != 0) throw Gp();
        for (ulong o = 16; o < 64; o += 8)
            if (Read64((la + 512 + o) & LinMask) != 0) throw Gp();
        uint mx = Mxcsr;
        if ((rfbm & 2) != 0)
        {
            mx = Read32(la + 24);
            if ((mx & 0xFFFF_0000) != 0) throw Gp();
        }
        if ((rfbm & 1) != 0)
        {
            if ((bv & 1) != 0) RestoreX87(la);
            else InitX87();
        }
        if ((rfbm & 2) != 0)
        {
            Mxcsr = mx; // MXCSR is loaded whenever SSE is requested, even with XSTATE_BV[1] clear
            if ((bv & 2) != 0) RestoreXmm(la);
            else for (int i = 0; i < 32; i++) Xmm[i] = 0;
        }
        if ((rfbm & XcrPkru) != 0) SetPkru((bv & XcrPkru) != 0 ? Read32((la + XsavePkruOffset) & LinMask) : 0);
    }
}
