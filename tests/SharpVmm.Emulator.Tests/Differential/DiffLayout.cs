namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// Where things live. The native runner maps one region at a fixed low host address (below 1 GiB, so the
/// harness code can use [disp32] absolute addresses and the guest's identity map needs one page directory);
/// the emulated guest gets RAM at the same guest-physical address, identity mapped, so every address a
/// sequence computes (pointer registers, RIP-relative, absolute) means the same byte on both sides.
/// </summary>
internal static class DiffLayout
{
    /// <summary>Candidate region bases, tried in order until the host has one free.</summary>
    public static readonly ulong[] CandidateBases = [0x3000_0000, 0x3400_0000, 0x3800_0000, 0x2C00_0000, 0x2800_0000, 0x2400_0000];

    public const ulong RegionSize = 0x40000;

    /// <summary>Native prologue (loads the input block, jumps to the sequence).</summary>
    public const ulong Prologue = 0x0;
    /// <summary>Native epilogue (stores the output block, returns to .NET); sequences end in a jump here.</summary>
    public const ulong Epilogue = 0x800;
    /// <summary>The instruction sequence under test: the same address natively and in the guest.</summary>
    public const ulong Code = 0x1000;
    public const ulong CodeSize = 0x8000;

    /// <summary>Control block: input state, output state, saved host registers, jump target.</summary>
    public const ulong Control = 0x10000;
    public const ulong In = Control + 0x000;
    public const ulong Out = Control + 0x400;
    public const ulong HostRsp = Control + 0x800;
    public const ulong HostMxcsr = Control + 0x808;
    public const ulong JumpTarget = Control + 0x810;

    /// <summary>Offsets inside a state block (input and output share the shape).</summary>
    public const int GprOffset = 0x00, RflagsOffset = 0x80, MxcsrOffset = 0x88, XmmOffset = 0x100, StateBlockSize = 0x200;

    /// <summary>The sequence's private stack (RSP points near its top).</summary>
    public const ulong StackLow = 0x20000;
    public const ulong StackTop = 0x2F000;

    /// <summary>The scratch data buffer every memory operand points into.</summary>
    public const ulong Data = 0x30000;
    public const int DataSize = 0x2000;

    /// <summary>
    /// What is randomised before and compared after every case: the stack window around <see cref="StackTop"/>
    /// (pushes, pops, calls) followed by the data buffer.
    /// </summary>
    public const ulong Compared = 0x2E000;
    public const int ComparedSize = 0x4000;
    public const ulong StackWindowLow = Compared, StackWindowHigh = Data;

    /// <summary>The stack qword the prologue's PUSH/POPFQ and the epilogue's PUSHFQ borrow, saved and restored around them.</summary>
    public const ulong PrologueSlot = Control + 0x818, EpilogueSlot = Control + 0x820;

    // Guest-only low RAM: paging structures, GDT, TSS, IDT and one HLT stub per exception vector.
    public const ulong GuestLowRamSize = 0x10000;
    public const ulong GuestPml4 = 0x1000, GuestPdpt = 0x2000, GuestPd = 0x3000;
    public const ulong GuestGdt = 0x4000, GuestTss = 0x4100, GuestIdt = 0x5000, GuestVectorStubs = 0x6000;
    public const int VectorStubSize = 8;
}
