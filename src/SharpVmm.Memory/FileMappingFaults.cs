using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace SharpVmm.Memory;

/// <summary>
/// Guest RAM mapped from a file (a restored snapshot) faults with SIGBUS if the file is truncated under the VM: the
/// kernel takes back even the pages the guest had already copied. Rather than dying of that signal with nothing
/// said, the process installs this SIGBUS handler: a few x86-64 instructions (the fault may hit any thread, in any
/// runtime state, so no managed code runs) that, for an address inside a file-mapped region, write one line naming
/// the file and end the process with exit code 1 (a VMM error); any other SIGBUS goes to the handler that was there
/// before (the .NET runtime's), or to the default action.
/// </summary>
internal static unsafe class FileMappingFaults
{
    private const int MaxRanges = 64;
    private const int EntryBytes = 32;      // start, end, message, length
    private const int Sigbus = 7;
    private const ulong SaSiginfo = 0x4, SaOnstack = 0x0800_0000, SaRestorer = 0x0400_0000;
    private static readonly object s_lock = new();
    private static byte* s_table;           // MaxRanges entries, then the previous sigaction (32 bytes), then a zeroed one
    private static int s_count;

    [StructLayout(LayoutKind.Sequential)]
    private struct KernelSigaction
    {
        public nint Handler;
        public ulong Flags;
        public nint Restorer;
        public ulong Mask;
    }

    /// <summary>Reports a SIGBUS inside [<paramref name="start"/>, +<paramref name="length"/>) as a truncated <paramref name="file"/>.</summary>
    public static void Watch(nint start, ulong length, string file, ulong guestBase)
    {
        lock (s_lock)
        {
            if (s_table is null) Install();
            string text = $"sharpvmm: guest RAM 0x{guestBase:x}-0x{guestBase + length - 1:x} is mapped from '{file}', which was truncated while the VM ran: stopping the VM (a snapshot must not be rewritten in place while a VM restored from it runs)\n";
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            byte* message = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
            bytes.CopyTo(new Span<byte>(message, bytes.Length));
            int slot = FindSlot(start);
            if (slot < 0) return; // past MaxRanges regions: such a SIGBUS keeps its default action
            byte* e = s_table + slot * EntryBytes;
            // The handler stops at a zero start: fill the entry first, publish its start last.
            *(ulong*)(e + 8) = (ulong)start + length;
            *(ulong*)(e + 16) = (ulong)message;
            *(ulong*)(e + 24) = (ulong)bytes.Length;
            Volatile.Write(ref *(ulong*)e, (ulong)start);
        }
    }

    /// <summary>The range at <paramref name="start"/> is anonymous memory again (or unmapped): a fault there is not a truncated file.</summary>
    public static void Forget(nint start)
    {
        lock (s_lock)
        {
            if (s_table is null) return;
            for (int i = 0; i < s_count; i++)
            {
                byte* e = s_table + i * EntryBytes;
                if (*(ulong*)e == (ulong)start)
                {
                    // An empty range (1, 1) that nothing matches, keeping the entries after it reachable.
                    *(ulong*)(e + 8) = 1;
                    Volatile.Write(ref *(ulong*)e, 1UL);
                }
            }
        }
    }

    private static int FindSlot(nint start)
    {
        for (int i = 0; i < s_count; i++)
            if (*(ulong*)(s_table + i * EntryBytes) is 1UL || *(ulong*)(s_table + i * EntryBytes) == (ulong)start) return i;
        return s_count < MaxRanges ? s_count++ : -1;
    }

    private static void Install()
    {
        nuint dataBytes = MaxRanges * EntryBytes + 2 * 32 + EntryBytes;
        byte* data = (byte*)NativeMemory.AllocZeroed(dataBytes);
        byte* previous = data + MaxRanges * EntryBytes + EntryBytes; // one zero entry always ends the table
        byte* zeroAction = previous + 32;
        nint page = Libc.Mmap(0, 4096, Libc.ProtRead | Libc.ProtWrite, Libc.MapPrivate | Libc.MapAnonymous, -1, 0);
        if (page == Libc.MapFailed) throw new GuestMemoryException($"cannot map the SIGBUS reporter (errno {Marshal.GetLastPInvokeError()})");
        byte[] code = Code((ulong)data, (ulong)previous, (ulong)zeroAction, out int restorer);
        code.CopyTo(new Span<byte>((void*)page, code.Length));
        if (Libc.Mprotect(page, 4096, Libc.ProtRead | Libc.ProtExec) != 0)
            throw new GuestMemoryException($"cannot protect the SIGBUS reporter (errno {Marshal.GetLastPInvokeError()})");
        var act = new KernelSigaction { Handler = page, Flags = SaSiginfo | SaOnstack | SaRestorer, Restorer = page + restorer };
        if (Libc.Syscall(13 /* rt_sigaction */, Sigbus, (nint)(&act), (nint)previous, 8) != 0)
            throw new GuestMemoryException($"cannot install the SIGBUS reporter (errno {Marshal.GetLastPInvokeError()})");
        s_table = data;
    }

    private static byte Rel8(int distance) => unchecked((byte)checked((sbyte)distance));

    /// <summary>handler(int sig, siginfo_t *info, void *context), then the rt_sigreturn restorer at <paramref name="restorer"/>.</summary>
    private static byte[] Code(ulong table, ulong previous, ulong zeroAction, out int restorer)
    {
        var c = new List<byte>(160);
        void B(params byte[] b) => c.AddRange(b);
        void U32(uint v) { Span<byte> s = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(s, v); foreach (byte x in s) c.Add(x); }
        void U64(ulong v) { Span<byte> s = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(s, v); foreach (byte x in s) c.Add(x); }
        int Jump(byte opcode) { B(opcode, 0); return c.Count; }               // returns the offset the rel8 counts from
        void Land(int from) => c[from - 1] = Rel8(c.Count - from);

        B(0x48, 0x8B, 0x46, 0x10);                         // mov rax, [rsi+16]     ; info->si_addr
        B(0x48, 0xB9); U64(table);                         // mov rcx, table
        int loop = c.Count;
        B(0x4C, 0x8B, 0x01);                               // mov r8, [rcx]         ; start (0 ends the table)
        B(0x4D, 0x85, 0xC0);                               // test r8, r8
        int toChain = Jump(0x74);                          // jz chain
        B(0x4C, 0x39, 0xC0);                               // cmp rax, r8
        int below = Jump(0x72);                            // jb next
        B(0x48, 0x3B, 0x41, 0x08);                         // cmp rax, [rcx+8]
        int above = Jump(0x73);                            // jae next
        B(0x48, 0x8B, 0x71, 0x10);                         // mov rsi, [rcx+16]     ; the message
        B(0x48, 0x8B, 0x51, 0x18);                         // mov rdx, [rcx+24]     ; its length
        B(0xBF); U32(2);                                   // mov edi, 2            ; stderr
        B(0xB8); U32(1);                                   // mov eax, 1            ; write
        B(0x0F, 0x05);                                     // syscall
        B(0xBF); U32(1);                                   // mov edi, 1            ; exit code 1: a VMM error
        B(0xB8); U32(231);                                 // mov eax, 231          ; exit_group
        B(0x0F, 0x05);                                     // syscall
        B(0xF4);                                           // hlt
        Land(below); Land(above);
        B(0x48, 0x83, 0xC1, EntryBytes);                   // add rcx, 32
        B(0xEB, Rel8(loop - (c.Count + 2)));              // jmp loop
        Land(toChain);
        B(0x48, 0xB8); U64(previous);                      // mov rax, &previous.handler
        B(0x48, 0x8B, 0x00);                               // mov rax, [rax]
        B(0x48, 0x83, 0xF8, 0x01);                         // cmp rax, 1            ; SIG_DFL or SIG_IGN
        int toDefault = Jump(0x76);                        // jbe default
        B(0xFF, 0xE0);                                     // jmp rax               ; the previous handler, same arguments
        Land(toDefault);
        B(0xB8); U32(13);                                  // mov eax, 13           ; rt_sigaction(SIGBUS, SIG_DFL)
        B(0xBF); U32(Sigbus);                              // mov edi, 7
        B(0x48, 0xBE); U64(zeroAction);                    // mov rsi, zeroAction
        B(0x31, 0xD2);                                     // xor edx, edx
        B(0x41, 0xBA); U32(8);                             // mov r10d, 8
        B(0x0F, 0x05);                                     // syscall
        B(0xC3);                                           // ret: the fault repeats and takes the default action
        restorer = c.Count;
        B(0xB8); U32(15);                                  // mov eax, 15           ; rt_sigreturn
        B(0x0F, 0x05);                                     // syscall
        return [.. c];
    }
}
