using SharpVmm.Kvm.Interop;

namespace SharpVmm.Kvm.State;

/// <summary>
/// PKRU inside KVM's XSAVE image (Intel SDM vol. 1, 13.4-13.5): state component 9, 4 bytes at the standard-format
/// offset CPUID.(EAX=0xD,ECX=9).EBX reports (KVM_GET_XSAVE uses the standard, uncompacted format), present when
/// XSTATE_BV bit 9 is set; when that bit is clear the component is in its initial state, PKRU = 0.
/// </summary>
public static unsafe class XsavePkru
{
    public const int Component = 9;
    private const int XstateBv = 512, HeaderEnd = 576;
    private const ulong PkruBit = 1UL << Component;

    /// <summary>
    /// The PKRU offset from KVM_GET_SUPPORTED_CPUID's leaf 0xD subleaf 9, or null when KVM offers no PKRU state (no
    /// PKU on the host) or it would not fit the 4 KiB legacy image.
    /// </summary>
    public static int? OffsetFrom(ReadOnlySpan<KvmCpuidEntry2> supported)
    {
        foreach (var e in supported)
        {
            if (e.Function != 0xD || e.Index != Component) continue;
            if (e.Eax < 4 || e.Ebx < HeaderEnd || e.Ebx + e.Eax > KvmXsave.Size) return null;
            return (int)e.Ebx;
        }
        return null;
    }

    public static uint Read(in KvmXsave xsave, int offset)
    {
        Check(offset);
        fixed (byte* p = xsave.Region)
            return (*(ulong*)(p + XstateBv) & PkruBit) != 0 ? *(uint*)(p + offset) : 0;
    }

    /// <summary>Stores <paramref name="pkru"/>: 0 as the initial state (XSTATE_BV bit 9 clear), anything else as present.</summary>
    public static void Write(uint pkru, ref KvmXsave xsave, int offset)
    {
        Check(offset);
        fixed (byte* p = xsave.Region)
        {
            *(uint*)(p + offset) = pkru;
            if (pkru != 0) *(ulong*)(p + XstateBv) |= PkruBit;
            else *(ulong*)(p + XstateBv) &= ~PkruBit;
        }
    }

    private static void Check(int offset)
    {
        if (offset < HeaderEnd || offset + 4 > KvmXsave.Size)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"PKRU's XSAVE offset must lie between the header's end ({HeaderEnd}) and {KvmXsave.Size - 4}");
    }
}
