using System.Runtime.Intrinsics.X86;
using Iced.Intel;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>The CPUID feature bits the generators care about.</summary>
[Flags]
internal enum CpuFeature
{
    None = 0,
    Sse = 1 << 0,
    Sse2 = 1 << 1,
    Sse3 = 1 << 2,
    Cmov = 1 << 3,
    Cx8 = 1 << 4,
    Cx16 = 1 << 5,
    Popcnt = 1 << 6,
    Movbe = 1 << 7,
    LahfLm = 1 << 8,
    Lzcnt = 1 << 9,
    Bmi1 = 1 << 10,
    /// <summary>Set for instructions needing a feature this suite does not know: never generated.</summary>
    Unknown = 1 << 30,
}

internal static class CpuFeatures
{
    public delegate (uint Eax, uint Ebx, uint Ecx, uint Edx) CpuidFunc(uint leaf, uint subleaf);

    public static CpuFeature Decode(CpuidFunc cpuid)
    {
        var f = CpuFeature.None;
        uint maxStd = cpuid(0, 0).Eax;
        var l1 = cpuid(1, 0);
        if ((l1.Edx & (1u << 25)) != 0) f |= CpuFeature.Sse;
        if ((l1.Edx & (1u << 26)) != 0) f |= CpuFeature.Sse2;
        if ((l1.Edx & (1u << 15)) != 0) f |= CpuFeature.Cmov;
        if ((l1.Edx & (1u << 8)) != 0) f |= CpuFeature.Cx8;
        if ((l1.Ecx & (1u << 0)) != 0) f |= CpuFeature.Sse3;
        if ((l1.Ecx & (1u << 13)) != 0) f |= CpuFeature.Cx16;
        if ((l1.Ecx & (1u << 22)) != 0) f |= CpuFeature.Movbe;
        if ((l1.Ecx & (1u << 23)) != 0) f |= CpuFeature.Popcnt;
        if (maxStd >= 7 && (cpuid(7, 0).Ebx & (1u << 3)) != 0) f |= CpuFeature.Bmi1;
        uint maxExt = cpuid(0x8000_0000, 0).Eax;
        if (maxExt >= 0x8000_0001)
        {
            var e1 = cpuid(0x8000_0001, 0);
            if ((e1.Ecx & (1u << 0)) != 0) f |= CpuFeature.LahfLm;
            if ((e1.Ecx & (1u << 5)) != 0) f |= CpuFeature.Lzcnt;
        }
        return f;
    }

    public static CpuFeature Host()
    {
        if (!X86Base.IsSupported) return CpuFeature.None;
        return Decode((leaf, sub) =>
        {
            var (a, b, c, d) = X86Base.CpuId((int)leaf, (int)sub);
            return ((uint)a, (uint)b, (uint)c, (uint)d);
        });
    }

    /// <summary>What executing <paramref name="code"/> needs, from Iced's CPUID table (plus LAHF/SAHF's 64-bit bit).</summary>
    public static CpuFeature Required(Code code)
    {
        if (code is Code.Lahf or Code.Sahf) return CpuFeature.LahfLm;
        var f = CpuFeature.None;
        foreach (var c in new Instruction { Code = code }.CpuidFeatures)
            f |= c switch
            {
                CpuidFeature.INTEL8086 or CpuidFeature.INTEL186 or CpuidFeature.INTEL286 or CpuidFeature.INTEL386
                    or CpuidFeature.INTEL486 or CpuidFeature.X64 => CpuFeature.None,
                CpuidFeature.SSE => CpuFeature.Sse,
                CpuidFeature.SSE2 => CpuFeature.Sse2,
                CpuidFeature.SSE3 => CpuFeature.Sse3,
                CpuidFeature.CMOV => CpuFeature.Cmov,
                CpuidFeature.CX8 => CpuFeature.Cx8,
                CpuidFeature.CMPXCHG16B => CpuFeature.Cx16,
                CpuidFeature.POPCNT => CpuFeature.Popcnt,
                CpuidFeature.MOVBE => CpuFeature.Movbe,
                CpuidFeature.LZCNT => CpuFeature.Lzcnt,
                CpuidFeature.BMI1 => CpuFeature.Bmi1,
                _ => CpuFeature.Unknown,
            };
        return f;
    }
}
