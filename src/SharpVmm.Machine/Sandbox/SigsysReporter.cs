using System.Buffers.Binary;
using System.Text;

namespace SharpVmm.Machine.Sandbox;

/// <summary>
/// The SIGSYS handler the sandbox traps into: a few x86-64 instructions, not managed code, because the call that
/// trapped may come from any thread in any state (inside the GC, holding runtime locks) where entering the runtime
/// is unsafe. It writes one prepared line naming the call to stderr, then makes a second forbidden call: with SIGSYS
/// blocked inside its own handler the kernel resets it to the default action and kills the whole process with
/// SIGSYS (exit status 159, as SECCOMP_RET_KILL_PROCESS would), so nothing of the refused request happens.
/// </summary>
public static class SigsysReporter
{
    /// <summary>Bytes per message slot: a length byte, then the text.</summary>
    public const int Stride = 128;

    /// <summary>Where <see cref="RestorerCode"/> goes in the handler's page, after the handler.</summary>
    public const int RestorerOffset = 256;

    /// <summary>rt_sigreturn, the restorer x86-64 signal delivery requires (the handler never returns to it).</summary>
    public static readonly byte[] RestorerCode = [0xB8, 0x0F, 0x00, 0x00, 0x00, 0x0F, 0x05]; // mov eax, 15; syscall

    /// <summary>The line printed for call <paramref name="number"/> (also what the handler's table holds).</summary>
    public static string Message(int number)
        => (uint)number < (uint)SyscallTable.Names.Length
            ? $"sharpvmm: sandbox: system call {SyscallTable.Name(number)} ({number}) is not allowed: stopping the VM process (--sandbox off runs without the filter)\n"
            : $"sharpvmm: sandbox: a system call numbered {SyscallTable.Names.Length} or higher is not allowed: stopping the VM process (--sandbox off runs without the filter)\n";

    /// <summary>The message table: one slot per known call number and a last one for every other number.</summary>
    public static byte[] BuildTable()
    {
        int slots = SyscallTable.Names.Length + 1;
        var table = new byte[slots * Stride];
        for (int i = 0; i < slots; i++)
        {
            byte[] text = Encoding.ASCII.GetBytes(Message(i));
            if (text.Length > Stride - 1)
            {
                // Long names lose the advice, never the call's name.
                text = Encoding.ASCII.GetBytes(i < SyscallTable.Names.Length
                    ? $"sharpvmm: sandbox: system call {SyscallTable.Name(i)} ({i}) is not allowed: stopping the VM process\n"
                    : $"sharpvmm: sandbox: a system call numbered {i} or higher is not allowed: stopping the VM process\n");
            }
            table[i * Stride] = (byte)text.Length;
            text.CopyTo(table, i * Stride + 1);
        }
        return table;
    }

    /// <summary>The handler's code: void handler(int sig, siginfo_t *info, void *context), with the table at <paramref name="table"/>.</summary>
    public static byte[] BuildCode(ulong table)
    {
        uint lastSlot = (uint)SyscallTable.Names.Length;
        var code = new List<byte>(64);
        code.AddRange([0x8B, 0x46, 0x18]);                          // mov eax, [rsi+24]   ; info->si_syscall
        code.Add(0x3D); AddU32(code, lastSlot);                      // cmp eax, lastSlot
        code.AddRange([0x72, 0x05]);                                // jb +5
        code.Add(0xB8); AddU32(code, lastSlot);                      // mov eax, lastSlot
        code.AddRange([0x48, 0xC1, 0xE0, 0x07]);                    // shl rax, 7          ; * Stride
        code.AddRange([0x48, 0xBE]); AddU64(code, table);            // mov rsi, table
        code.AddRange([0x48, 0x01, 0xC6]);                          // add rsi, rax
        code.AddRange([0x0F, 0xB6, 0x16]);                          // movzx edx, byte [rsi] ; length
        code.AddRange([0x48, 0xFF, 0xC6]);                          // inc rsi
        code.Add(0xBF); AddU32(code, 2);                             // mov edi, 2          ; stderr
        code.Add(0xB8); AddU32(code, 1);                             // mov eax, 1          ; write
        code.AddRange([0x0F, 0x05]);                                // syscall
        code.Add(0xB8); AddU32(code, 59);                            // mov eax, 59         ; execve: never allowed
        code.AddRange([0x31, 0xFF, 0x31, 0xF6, 0x31, 0xD2]);        // xor edi, edi; xor esi, esi; xor edx, edx
        code.AddRange([0x0F, 0x05]);                                // syscall             ; SIGSYS while blocked: killed
        code.Add(0xB8); AddU32(code, 231);                           // mov eax, 231        ; exit_group, should the kernel not kill
        code.Add(0xBF); AddU32(code, 128 + 31);                      // mov edi, 159
        code.AddRange([0x0F, 0x05]);                                // syscall
        code.Add(0xF4);                                             // hlt (faults: never returns into the refused call)
        System.Diagnostics.Debug.Assert(Stride == 1 << 7);
        return [.. code];
    }

    private static void AddU32(List<byte> code, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        foreach (byte x in b) code.Add(x);
    }

    private static void AddU64(List<byte> code, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        foreach (byte x in b) code.Add(x);
    }
}
