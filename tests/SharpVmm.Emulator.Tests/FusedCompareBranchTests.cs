using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// CMP/TEST directly followed by a Jcc run as one fused op. Every form, every condition and edge operands: the
/// branch taken and the flags left behind must be those of the same pair with a NOP between them (which is never
/// fused, and which the differential tests check against the host CPU); and single-stepping still stops between them.
/// </summary>
public class FusedCompareBranchTests
{
    private const ulong FusedResults = 0x100000, PlainResults = 0x140000;

    private static readonly ulong[] Values =
    [
        0, 1, 2, ulong.MaxValue, ulong.MaxValue - 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
        0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_0000_0001, 0x1234_5678_9ABC_DEF0, 0x80, 0xFF,
    ];

    private static readonly int[] Immediates = [0, 1, -1, 0x7FFF_FFFF, int.MinValue, 0x80, -0x80, 0x1234_5678];

    public static TheoryData<string> Forms => new() { "cmp-rr64", "cmp-rr32", "cmp-ri64", "cmp-ri32", "test-rr64", "test-rr32", "test-ri64", "test-ri32" };

    [Theory, MemberData(nameof(Forms))]
    public void Every_condition_branches_and_leaves_flags_as_the_unfused_pair(string form)
    {
        for (int cc = 0; cc < 16; cc++)
        {
            using var g = new TestGuest();
            int cases = 0;
            g.Load64(a =>
            {
                cases = Emit(a, form, cc, FusedResults, separate: false);
                Emit(a, form, cc, PlainResults, separate: true);
                a.hlt();
            });
            g.RunToHalt();
            for (int i = 0; i < cases; i++)
            {
                ulong fusedTaken = g.Memory.Read<ulong>(FusedResults + (ulong)i * 16), plainTaken = g.Memory.Read<ulong>(PlainResults + (ulong)i * 16);
                ulong fusedFlags = g.Memory.Read<ulong>(FusedResults + (ulong)i * 16 + 8) & 0x8D5, plainFlags = g.Memory.Read<ulong>(PlainResults + (ulong)i * 16 + 8) & 0x8D5;
                Assert.True(plainTaken <= 1, $"{form} cc {cc} case {i}: the unfused pair did not run");
                Assert.True(fusedTaken == plainTaken, $"{form} cc {cc} case {i}: fused taken={fusedTaken}, unfused {plainTaken}");
                Assert.True(fusedFlags == plainFlags, $"{form} cc {cc} case {i}: fused flags 0x{fusedFlags:x}, unfused 0x{plainFlags:x}");
            }
        }
    }

    /// <summary>One compare-and-branch per operand case; results[i] = {taken, RFLAGS after}.</summary>
    private static int Emit(Assembler a, string form, int cc, ulong results, bool separate)
    {
        bool test = form.StartsWith("test", StringComparison.Ordinal), imm = form.Contains("-ri", StringComparison.Ordinal), wide = form.EndsWith("64", StringComparison.Ordinal);
        var cases = new List<(ulong A, ulong B, int Imm)>();
        if (imm) foreach (ulong v in Values) foreach (int i in Immediates) cases.Add((v, 0, i));
        else foreach (ulong x in Values) foreach (ulong y in Values) if ((x ^ y) % 3 == 0 || x == y) cases.Add((x, y, 0));
        for (int i = 0; i < cases.Count; i++)
        {
            var (x, y, k) = cases[i];
            var taken = a.CreateLabel();
            var next = a.CreateLabel();
            a.mov(rax, x);
            a.mov(rbx, y);
            if (test)
            {
                if (imm) { if (wide) a.test(rax, k); else a.test(eax, k); }
                else if (wide) a.test(rax, rbx);
                else a.test(eax, ebx);
            }
            else if (imm) { if (wide) a.cmp(rax, k); else a.cmp(eax, k); }
            else if (wide) a.cmp(rax, rbx);
            else a.cmp(eax, ebx);
            if (separate) a.nop();
            GuestCode.Jcc(a, cc, taken);
            a.mov(__qword_ptr[results + (ulong)i * 16], 0);
            a.jmp(next);
            a.Label(ref taken);
            a.mov(__qword_ptr[results + (ulong)i * 16], 1);
            a.Label(ref next);
            a.pushfq();
            a.pop(__qword_ptr[results + (ulong)i * 16 + 8]);
        }
        return cases.Count;
    }


    [Fact]
    public void Single_step_stops_between_the_compare_and_the_branch()
    {
        const ulong count = SingleStepTests.Count, rips = SingleStepTests.Rips;
        using var g = new TestGuest();
        SingleStepTests.InstallDebugHandler(g);
        ulong jccAt = 0, target = 0;
        g.Load64(a =>
        {
            var skip = a.CreateLabel();
            a.mov(eax, 5);
            a.pushfq();
            a.or(__qword_ptr[rsp], 0x100);
            a.popfq();
            a.cmp(eax, 5);                  // 1: trap with RIP at the JE
            a.je(skip);                     // 2: trap with RIP at the target
            a.mov(ecx, 1);
            a.Label(ref skip);
            a.pushfq();                     // 3
            a.and(__qword_ptr[rsp], ~0x100); // 4
            a.popfq();                      // 5
            a.hlt();
        });
        // Find the JE and its target in the assembled code: 3D 05 00 00 00 (cmp eax, 5) then 74 xx.
        for (ulong p = TestGuest.CodeBase; p < TestGuest.CodeBase + 64; p++)
        {
            if (g.Memory.Read<byte>(p) == 0x3D && g.Memory.Read<uint>(p + 1) == 5 && g.Memory.Read<byte>(p + 5) == 0x74)
            {
                jccAt = p + 5;
                target = jccAt + 2 + g.Memory.Read<byte>(jccAt + 1);
                break;
            }
        }
        Assert.NotEqual(0UL, jccAt);
        var s = g.RunToHalt();
        Assert.Equal(5UL, g.Memory.Read<ulong>(count));
        Assert.Equal(jccAt, g.Memory.Read<ulong>(rips));
        Assert.Equal(target, g.Memory.Read<ulong>(rips + 8));
        Assert.Equal(0UL, s[Gpr.Rcx]);
    }
}
