using System.Runtime.InteropServices;

namespace SharpVmm.Machine.Sandbox;

/// <summary>One classic BPF instruction (the kernel's struct sock_filter).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct SockFilter(ushort Code, byte Jt, byte Jf, uint K);

/// <summary>The classic BPF opcodes a seccomp program uses, and the fields of struct seccomp_data it reads.</summary>
public static class Bpf
{
    public const ushort LdWAbs = 0x20;   // BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset K of seccomp_data
    public const ushort JeqK = 0x15;     // BPF_JMP | BPF_JEQ | BPF_K
    public const ushort JgeK = 0x35;     // BPF_JMP | BPF_JGE | BPF_K
    public const ushort JsetK = 0x45;    // BPF_JMP | BPF_JSET | BPF_K
    public const ushort RetK = 0x06;     // BPF_RET | BPF_K

    /// <summary>The kernel refuses longer programs (BPF_MAXINSNS).</summary>
    public const int MaxInstructions = 4096;

    // struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; } (little-endian: low word first)
    public const uint OffsetNr = 0;
    public const uint OffsetArch = 4;
    public static uint OffsetArgLow(int i) => 16u + 8u * (uint)i;
    public static uint OffsetArgHigh(int i) => 20u + 8u * (uint)i;

    public static SockFilter Load(uint offset) => new(LdWAbs, 0, 0, offset);
    public static SockFilter Ret(uint action) => new(RetK, 0, 0, action);
    public static SockFilter Jump(ushort code, uint k, byte jt, byte jf) => new(code, jt, jf, k);
}

/// <summary>Seccomp's return actions and constants (linux/seccomp.h, linux/audit.h).</summary>
public static class Seccomp
{
    public const uint RetKillProcess = 0x8000_0000;
    public const uint RetTrap = 0x0003_0000;
    public const uint RetErrno = 0x0005_0000;
    public const uint RetAllow = 0x7fff_0000;
    public const uint ActionMask = 0xffff_0000;

    public const uint AuditArchX86_64 = 0xC000_003E;
    /// <summary>x32 system calls are x86-64 calls with this bit set in the number: a second table we never use.</summary>
    public const uint X32SyscallBit = 0x4000_0000;

    public const int SetModeFilter = 1;
    public const uint FilterFlagTsync = 1;
}
