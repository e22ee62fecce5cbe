using Iced.Intel;
using SharpVmm.Core.Cpu;
using SharpVmm.Emulator.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVmm.Emulator.Tests;

/// <summary>
/// Protection keys for user pages: CPUID PKU/OSPKE, CR4.PKE, RDPKRU/WRPKRU and their #UD/#GP rules, the AD and WD
/// checks on data accesses to user pages (from CPL 3 and from the kernel, error code bit 5), none for fetches or
/// supervisor pages, PKRU changes seen through the TLB, PKRU as XSAVE component 9, and PKRU in the vCPU state.
/// </summary>
public class PkuTests
{
    private const uint Cr4Pke = 1u << 22;
    private const ulong Keyed = 0x40000;           // a user page with protection key 5
    private const int Key = 5;
    private const uint AccessDisable = 1u << (Key * 2), WriteDisable = 2u << (Key * 2);

    private static TestGuest Guest()
    {
        var g = new TestGuest();
        g.Memory.Write(TestGuest.Pt + (Keyed >> 12) * 8, Keyed | 0x7UL | ((ulong)Key << 59));
        g.Memory.Write(Keyed, 0x5A5AUL);
        return g;
    }

    private static void EnablePke(Assembler a)
    {
        a.mov(rax, cr4);
        a.or(eax, (int)Cr4Pke);
        a.mov(cr4, rax);
    }

    private static void Wrpkru(Assembler a, uint value)
    {
        a.mov(eax, value);
        a.xor(ecx, ecx);
        a.xor(edx, edx);
        a.wrpkru();
    }

    private static void ToUser(Assembler a)
    {
        var user = a.CreateLabel();
        a.push(TestGuest.UserDs);
        a.push((int)TestGuest.UserStackTop);
        a.push(0x2);
        a.push(TestGuest.UserCs);
        a.lea(rax, __[user]);
        a.push(rax);
        a.iretq();
        a.Label(ref user);
    }

    [Fact]
    public void Cpuid_shows_pku_and_ospke_follows_cr4_pke()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(eax, 7); a.xor(ecx, ecx); a.cpuid();
            a.mov(r8d, ecx);
            EnablePke(a);
            a.mov(eax, 7); a.xor(ecx, ecx); a.cpuid();
            a.mov(r9d, ecx);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(1UL << 3, s[Gpr.R8] & 0x18);    // PKU, no OSPKE
        Assert.Equal(0x18UL, s[Gpr.R9] & 0x18);      // PKU and OSPKE
    }

    [Fact]
    public void Rdpkru_and_wrpkru_are_undefined_without_cr4_pke()
    {
        foreach (var insn in new Action<Assembler>[] { a => a.rdpkru(), a => a.wrpkru() })
        {
            using var g = new TestGuest();
            g.Load64(a =>
            {
                a.xor(ecx, ecx); a.xor(edx, edx); a.xor(eax, eax);
                insn(a);
                a.mov(r9, 1);
                a.hlt();
            });
            var s = g.RunToHalt();
            Assert.Equal(6UL, g.LoggedVector);
            Assert.Equal(0UL, s[Gpr.R9]);
        }
    }

    [Fact]
    public void Nonzero_ecx_or_edx_is_a_general_protection_fault()
    {
        foreach (var (ecxValue, edxValue, write) in new[] { (1u, 0u, false), (1u, 0u, true), (0u, 1u, true) })
        {
            using var g = new TestGuest();
            g.Load64(a =>
            {
                EnablePke(a);
                a.mov(ecx, ecxValue); a.mov(edx, edxValue); a.xor(eax, eax);
                if (write) a.wrpkru(); else a.rdpkru();
                a.mov(r9, 1);
                a.hlt();
            });
            var s = g.RunToHalt();
            Assert.Equal(13UL, g.LoggedVector);
            Assert.Equal(0UL, g.LoggedError);
            Assert.Equal(0UL, s[Gpr.R9]);
        }
    }

    [Fact]
    public void User_mode_reads_and_writes_pkru()
    {
        using var g = new TestGuest();
        g.Load64(a =>
        {
            EnablePke(a);
            ToUser(a);
            Wrpkru(a, 0x5555_5554);
            a.mov(edx, -1);
            a.xor(ecx, ecx);
            a.rdpkru();
            a.mov(r8, rax);
            a.mov(r9, rdx);
            a.ud2();
        });
        var s = g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);           // the UD2 at the end, from ring 3
        Assert.Equal(0x5555_5554UL, s[Gpr.R8]);
        Assert.Equal(0UL, s[Gpr.R9]);
        Assert.Equal(0x5555_5554u, s.Pkru);
    }

    [Fact]
    public void Access_disable_stops_user_reads_with_the_pk_error_bit()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnablePke(a);
            Wrpkru(a, AccessDisable);
            ToUser(a);
            a.mov(r8, __qword_ptr[Keyed + 0x800]);  // another page offset: same page, key 5
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x25UL, g.LoggedError);         // present, user, PK
        Assert.Equal(Keyed + 0x800, s.Cr2);
    }

    [Fact]
    public void Access_disable_applies_to_kernel_data_accesses_to_user_pages_too()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnablePke(a);
            Wrpkru(a, AccessDisable);
            a.mov(r8, __qword_ptr[Keyed]);
            a.hlt();
        });
        g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x21UL, g.LoggedError);         // present, supervisor read, PK
    }

    [Fact]
    public void Write_disable_allows_reads_and_stops_user_writes()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnablePke(a);
            Wrpkru(a, WriteDisable);
            ToUser(a);
            a.mov(r8, __qword_ptr[Keyed]);
            a.mov(__qword_ptr[Keyed], r8);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x5A5AUL, s[Gpr.R8]);
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x27UL, g.LoggedError);         // present, write, user, PK
    }

    [Fact]
    public void Write_disable_stops_kernel_writes_only_with_cr0_wp()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnablePke(a);
            Wrpkru(a, WriteDisable);
            a.mov(rax, cr0);
            a.btr(rax, 16);
            a.mov(cr0, rax);                         // WP off: the kernel may write
            a.mov(__qword_ptr[Keyed], 0x77);
            a.bts(rax, 16);
            a.mov(cr0, rax);
            a.mov(r9, 1);
            a.mov(__qword_ptr[Keyed + 8], 0x78);     // WP on: #PF
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x77UL, g.Memory.Read<ulong>(Keyed));
        Assert.Equal(1UL, s[Gpr.R9]);
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x23UL, g.LoggedError);         // present, supervisor write, PK
        Assert.Equal(0UL, g.Memory.Read<ulong>(Keyed + 8));
    }

    [Fact]
    public void Keys_do_not_restrict_fetches_supervisor_pages_or_a_cleared_cr4_pke()
    {
        using var g = Guest();
        const ulong kernelPage = 0x50000;
        g.Memory.Write(TestGuest.Pt + (kernelPage >> 12) * 8, kernelPage | 0x3UL | ((ulong)Key << 59));
        g.Memory.Write(kernelPage, 0x66UL);
        // User code on the keyed page: AD does not stop instruction fetches.
        var code = new Assembler(64);
        code.mov(r10, 3);
        code.ud2();
        g.Memory.Write(Keyed + 0x100, new ReadOnlySpan<byte>(TestGuest.Assemble(code, Keyed + 0x100)));
        g.Load64(a =>
        {
            a.mov(r8, __qword_ptr[Keyed]);           // PKE off: no check
            EnablePke(a);
            Wrpkru(a, AccessDisable | WriteDisable);
            a.mov(r9, __qword_ptr[kernelPage]);      // supervisor page: no key
            a.push(TestGuest.UserDs);
            a.push((int)TestGuest.UserStackTop);
            a.push(0x2);
            a.push(TestGuest.UserCs);
            a.push((int)(Keyed + 0x100));
            a.iretq();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x5A5AUL, s[Gpr.R8]);
        Assert.Equal(0x66UL, s[Gpr.R9]);
        Assert.Equal(3UL, s[Gpr.R10]);
        Assert.Equal(6UL, g.LoggedVector);
    }

    [Fact]
    public void A_translation_cached_before_wrpkru_restricts_is_not_used_after()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnablePke(a);
            ToUser(a);
            a.mov(r8, __qword_ptr[Keyed]);           // key 5 unrestricted: cached in the TLB
            a.mov(__qword_ptr[Keyed + 8], r8);       // for writes too
            Wrpkru(a, WriteDisable);
            a.mov(r9, __qword_ptr[Keyed]);           // reads still fine
            a.mov(r10, 1);
            a.mov(__qword_ptr[Keyed + 16], r9);      // the cached write entry must not let this through
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x5A5AUL, s[Gpr.R9]);
        Assert.Equal(1UL, s[Gpr.R10]);
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x27UL, g.LoggedError);
        Assert.Equal(0UL, g.Memory.Read<ulong>(Keyed + 16));
    }

    [Fact]
    public void Lifting_a_restriction_lets_the_next_access_through()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnablePke(a);
            Wrpkru(a, AccessDisable);
            ToUser(a);
            Wrpkru(a, 0);
            a.mov(r8, __qword_ptr[Keyed]);
            a.mov(__qword_ptr[Keyed + 8], r8);
            a.mov(r9, __qword_ptr[Keyed + 8]);
            a.ud2();
        });
        var s = g.RunToHalt();
        Assert.Equal(6UL, g.LoggedVector);
        Assert.Equal(0x5A5AUL, s[Gpr.R9]);
    }

    [Fact]
    public void Xsave_stores_pkru_as_component_9_and_xrstor_loads_it()
    {
        const ulong area = 0x60000;
        using var g = new TestGuest();
        g.Load64(a =>
        {
            a.mov(rax, cr4);
            a.or(eax, (int)(Cr4Pke | (1u << 18)));   // PKE, OSXSAVE
            a.mov(cr4, rax);
            a.mov(eax, 0xD); a.xor(ecx, ecx); a.cpuid();
            a.mov(r8d, eax);                          // supported components
            a.mov(r9d, ebx);                          // size for XCR0 = x87
            a.xor(ecx, ecx); a.xor(edx, edx); a.mov(eax, 0x203); a.xsetbv();
            a.mov(eax, 0xD); a.xor(ecx, ecx); a.cpuid();
            a.mov(r10d, ebx);                         // size with PKRU
            a.mov(eax, 0xD); a.mov(ecx, 9); a.cpuid();
            a.mov(r11d, eax);                         // PKRU size
            a.mov(r12d, ebx);                         // PKRU offset
            Wrpkru(a, 0x0000_000C);
            a.mov(eax, 0x200); a.xor(edx, edx);
            a.xsave(__[area]);
            Wrpkru(a, 0x0000_0030);
            a.mov(eax, 0x200); a.xor(edx, edx);
            a.xrstor(__[area]);
            a.xor(ecx, ecx); a.rdpkru();
            a.mov(r13d, eax);                         // back from memory
            a.mov(__qword_ptr[area + 512], 0);        // XSTATE_BV: PKRU in its initial state
            a.mov(eax, 0x200); a.xor(edx, edx);
            a.xrstor(__[area]);
            a.xor(ecx, ecx); a.rdpkru();
            a.mov(r14d, eax);
            a.hlt();
        });
        var s = g.RunToHalt();
        Assert.Equal(0x203UL, s[Gpr.R8]);
        Assert.Equal(576UL, s[Gpr.R9]);
        Assert.Equal(584UL, s[Gpr.R10]);
        Assert.Equal(8UL, s[Gpr.R11]);
        Assert.Equal(576UL, s[Gpr.R12]);
        Assert.Equal(0xCUL, s[Gpr.R13]);
        Assert.Equal(0UL, s[Gpr.R14]);
        Assert.Equal(0xCu, g.Memory.Read<uint>(area + 576));
    }

    [Fact]
    public void Pkru_travels_in_the_vcpu_state()
    {
        using var g = Guest();
        g.Load64(a =>
        {
            EnablePke(a);
            a.hlt();
            a.mov(r8, __qword_ptr[Keyed]);
            a.hlt();
        });
        var s = g.RunToHalt();
        s.Pkru = AccessDisable;
        g.Cpu.SetState(s);
        g.RunToHalt();
        Assert.Equal(14UL, g.LoggedVector);
        Assert.Equal(0x21UL, g.LoggedError);
    }
}
