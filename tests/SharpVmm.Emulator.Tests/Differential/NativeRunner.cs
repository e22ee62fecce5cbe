using System.Runtime.InteropServices;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests.Differential;

/// <summary>
/// Runs instruction bytes on the host CPU. One RWX anonymous mapping at a fixed low address holds a prologue
/// (saves the host's callee-saved registers and MXCSR, switches to the input's RSP in a private stack, loads
/// RFLAGS, XMM0..15, MXCSR and every GPR from the input block, jumps to the sequence), the sequence itself followed by a
/// jump to the epilogue (stores everything to the output block, clears DF, restores the host), a private stack
/// and the data buffer memory operands point into. The host thread never sees TF, AC or DF set: inputs are
/// limited to the status flags (plus DF when asked) and the epilogue clears DF before returning.
/// A sequence that faults kills the test process, so generators only emit what cannot fault.
/// </summary>
internal sealed unsafe class NativeRunner : IDisposable
{
    private static readonly AssemblerRegister64[] Gprs64 =
        [rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15];
    private static readonly AssemblerRegisterXMM[] Xmms =
        [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15];

    private readonly byte* _region;
    private bool _disposed;

    public NativeRunner()
    {
        nint p = DiffNative.MapFailed;
        foreach (ulong candidate in DiffLayout.CandidateBases)
        {
            p = DiffNative.mmap((nint)candidate, (nuint)DiffLayout.RegionSize,
                DiffNative.ProtRead | DiffNative.ProtWrite | DiffNative.ProtExec,
                DiffNative.MapPrivate | DiffNative.MapAnonymous | DiffNative.MapFixedNoReplace, -1, 0);
            if (p != DiffNative.MapFailed && (ulong)p == candidate) break;
            if (p != DiffNative.MapFailed) DiffNative.munmap(p, (nuint)DiffLayout.RegionSize); // old kernels ignore NOREPLACE
            p = DiffNative.MapFailed;
        }
        if (p == DiffNative.MapFailed)
            throw new InvalidOperationException(
                $"native runner: no free RWX mapping at any of the candidate bases (errno {Marshal.GetLastPInvokeError()}); " +
                "add a free address below 1 GiB to DiffLayout.CandidateBases");
        _region = (byte*)p;
        Base = (ulong)p;
        WriteCode(DiffLayout.Prologue, AssemblePrologue());
        WriteCode(DiffLayout.Epilogue, AssembleEpilogue());
    }

    /// <summary>Host virtual address of the region; the guest sees the same address.</summary>
    public ulong Base { get; }
    public ulong CodeAddress => Base + DiffLayout.Code;
    public ulong DataAddress => Base + DiffLayout.Data;
    public ulong StackTopAddress => Base + DiffLayout.StackTop;

    /// <summary>The live compared area (stack window, then the data buffer memory operands point into).</summary>
    public Span<byte> Data => new(_region + DiffLayout.Compared, DiffLayout.ComparedSize);
    public ulong ComparedAddress => Base + DiffLayout.Compared;

    /// <summary>
    /// Runs <paramref name="code"/> placed at <paramref name="address"/> (inside the code area) from
    /// <paramref name="input"/> (whose RSP must point into the private stack) over the current data buffer,
    /// and returns the state after it.
    /// </summary>
    public CpuSnapshot Run(CpuSnapshot input, ReadOnlySpan<byte> code, ulong address)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ulong codeStart = Base + DiffLayout.Code, codeEnd = codeStart + DiffLayout.CodeSize;
        if (address < codeStart || address + (ulong)code.Length + 5 > codeEnd)
            throw new ArgumentOutOfRangeException(nameof(address), $"code at 0x{address:x}+{code.Length} is outside the code area");
        byte* at = _region + (address - Base);
        code.CopyTo(new Span<byte>(at, code.Length));
        // jmp rel32 to the epilogue
        byte* j = at + code.Length;
        long rel = (long)(Base + DiffLayout.Epilogue) - (long)(address + (ulong)code.Length + 5);
        j[0] = 0xE9;
        *(int*)(j + 1) = checked((int)rel);

        var sane = input.Clone();
        sane.Rflags = SanitizeFlags(input.Rflags);
        sane.Mxcsr = SanitizeMxcsr(input.Mxcsr);
        ulong rsp = input.Gprs[4];
        if (rsp < Base + DiffLayout.StackLow + 0x1000 || rsp > Base + DiffLayout.StackWindowHigh)
            throw new ArgumentOutOfRangeException(nameof(input), $"rsp 0x{rsp:x} is outside the private stack");
        sane.WriteTo(_region + DiffLayout.In);
        *(ulong*)(_region + DiffLayout.JumpTarget) = address;
        *(ulong*)(_region + DiffLayout.PrologueSlot) = *(ulong*)(_region + (rsp - Base) - 8);
        new Span<byte>(_region + DiffLayout.Out, DiffLayout.StateBlockSize).Clear();

        ((delegate* unmanaged<void>)(_region + DiffLayout.Prologue))();

        return CpuSnapshot.ReadFrom(_region + DiffLayout.Out);
    }

    /// <summary>Only status flags and DF reach the CPU: never TF, IF changes, AC, or anything system-level.</summary>
    public static ulong SanitizeFlags(ulong rflags) => (rflags & (CpuSnapshot.StatusFlags | CpuSnapshot.DF)) | 0x2;

    /// <summary>All SIMD exceptions stay masked (an unmasked one would raise SIGFPE in the test host); reserved bits and MM clear.</summary>
    public static uint SanitizeMxcsr(uint mxcsr) => (mxcsr & 0xFFFF) | 0x1F80;

    private void WriteCode(ulong offset, byte[] bytes)
    {
        if (bytes.Length > 0x800) throw new InvalidOperationException("native harness code grew past its slot");
        bytes.CopyTo(new Span<byte>(_region + offset, bytes.Length));
    }

    private ulong C(ulong offset) => Base + offset;

    private byte[] AssemblePrologue()
    {
        var a = new Assembler(64);
        a.push(rbx); a.push(rbp); a.push(r12); a.push(r13); a.push(r14); a.push(r15);
        a.stmxcsr(__dword_ptr[C(DiffLayout.HostMxcsr)]);
        a.mov(__qword_ptr[C(DiffLayout.HostRsp)], rsp);
        ulong inBlock = C(DiffLayout.In);
        a.mov(rsp, __qword_ptr[inBlock + DiffLayout.GprOffset + 8 * 4]);
        for (int i = 0; i < 16; i++) a.movdqu(Xmms[i], __xmmword_ptr[inBlock + DiffLayout.XmmOffset + (ulong)(16 * i)]);
        a.ldmxcsr(__dword_ptr[inBlock + DiffLayout.MxcsrOffset]);
        a.push(__qword_ptr[inBlock + DiffLayout.RflagsOffset]);
        a.popfq();
        // Put back the stack qword PUSH just borrowed: the sequence must find the stack as the guest will.
        a.mov(rax, __qword_ptr[C(DiffLayout.PrologueSlot)]);
        a.mov(__qword_ptr[rsp - 8], rax);
        for (int i = 0; i < 16; i++)
            if (i != 4) a.mov(Gprs64[i], __qword_ptr[inBlock + DiffLayout.GprOffset + (ulong)(8 * i)]);
        a.jmp(__qword_ptr[C(DiffLayout.JumpTarget)]);
        return Assemble(a, C(DiffLayout.Prologue));
    }

    private byte[] AssembleEpilogue()
    {
        var a = new Assembler(64);
        ulong outBlock = C(DiffLayout.Out);
        for (int i = 0; i < 16; i++) a.mov(__qword_ptr[outBlock + DiffLayout.GprOffset + (ulong)(8 * i)], Gprs64[i]);
        a.mov(rax, __qword_ptr[rsp - 8]);
        a.mov(__qword_ptr[C(DiffLayout.EpilogueSlot)], rax);
        a.pushfq();
        a.pop(__qword_ptr[outBlock + DiffLayout.RflagsOffset]);
        a.mov(rax, __qword_ptr[C(DiffLayout.EpilogueSlot)]);
        a.mov(__qword_ptr[rsp - 8], rax);
        a.cld();
        a.stmxcsr(__dword_ptr[outBlock + DiffLayout.MxcsrOffset]);
        for (int i = 0; i < 16; i++) a.movdqu(__xmmword_ptr[outBlock + DiffLayout.XmmOffset + (ulong)(16 * i)], Xmms[i]);
        a.ldmxcsr(__dword_ptr[C(DiffLayout.HostMxcsr)]);
        a.mov(rsp, __qword_ptr[C(DiffLayout.HostRsp)]);
        a.pop(r15); a.pop(r14); a.pop(r13); a.pop(r12); a.pop(rbp); a.pop(rbx);
        a.ret();
        return Assemble(a, C(DiffLayout.Epilogue));
    }

    private static byte[] Assemble(Assembler a, ulong rip)
    {
        var w = new ByteWriter();
        a.Assemble(w, rip);
        return w.ToArray();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        DiffNative.munmap((nint)_region, (nuint)DiffLayout.RegionSize);
    }
}

/// <summary>Iced <see cref="CodeWriter"/> into a growable byte list.</summary>
internal sealed class ByteWriter : CodeWriter
{
    private readonly List<byte> _bytes = [];
    public override void WriteByte(byte value) => _bytes.Add(value);
    public byte[] ToArray() => [.. _bytes];
    public int Count => _bytes.Count;
}
