using SharpVmm.Core.Interrupts;
using SharpVmm.Devices.Timers;

namespace SharpVmm.Devices.Interrupts;

/// <summary>
/// The emu accelerator's interrupt controllers for one VM: the 8259 pair, one IOAPIC and one local APIC per vCPU
/// (APIC ID = vCPU index, vCPU 0 is the BSP), joined by an <see cref="ApicBus"/>.
/// GSI routing (as QEMU and KVM set it up for a PC, matching a MADT with the ISA IRQ0 → GSI 2 override):
/// <list type="bullet">
/// <item>GSI 0 (PIT): PIC IR0 and IOAPIC pin 2.</item>
/// <item>GSI 1, 3-15: PIC IRn and IOAPIC pin n.</item>
/// <item>GSI 2: IOAPIC pin 2 only (the PIC's IR2 is the cascade); pin 2 sees GSI 0 OR GSI 2.</item>
/// <item>GSI 16-23: IOAPIC pin n only.</item>
/// </list>
/// The PIC's INT output goes to LINT0 of every local APIC (taken where LINT0 is ExtINT, i.e. virtual-wire mode).
/// </summary>
public sealed partial class EmulatedIrqChip : IIrqRouter
{
    public const int GsiCount = IoApic.PinCount;

    private readonly object _pin2Gate = new();
    private readonly LocalApic[] _apics;
    private bool _gsi0Level;
    private bool _gsi2Level;

    /// <param name="timers">The VM's timer service (LAPIC timers).</param>
    /// <param name="cpuCount">Number of vCPUs (1-254).</param>
    /// <param name="ioApicId">The IOAPIC's ID; by default the first ID after the CPUs', so it never collides with an APIC ID.</param>
    public EmulatedIrqChip(TimerService timers, int cpuCount, byte? ioApicId = null)
    {
        ArgumentNullException.ThrowIfNull(timers);
        if (cpuCount < 1 || cpuCount > 254)
            throw new ArgumentOutOfRangeException(nameof(cpuCount), cpuCount, "The emulated xAPIC supports 1 to 254 vCPUs.");
        Pic = new PicPair();
        Bus = new ApicBus();
        IoApic = new IoApic(Bus, ioApicId ?? (byte)(cpuCount & 0xF));
        _apics = new LocalApic[cpuCount];
        for (int i = 0; i < cpuCount; i++)
        {
            _apics[i] = new LocalApic(Bus, timers, i, isBsp: i == 0, Pic);
            Bus.Attach(_apics[i]);
        }
        Pic.IntOutputChanged = level =>
        {
            foreach (LocalApic apic in _apics) apic.SetExtIntLine(level);
        };
    }

    public PicPair Pic { get; }

    public IoApic IoApic { get; }

    public ApicBus Bus { get; }

    public int CpuCount => _apics.Length;

    /// <summary>The local APIC of vCPU <paramref name="cpuIndex"/>, or null if there is none (pass as the emulator's <c>Func&lt;int, ILocalApic?&gt;</c>).</summary>
    public ILocalApic? LocalApicFor(int cpuIndex) => (uint)cpuIndex < (uint)_apics.Length ? _apics[cpuIndex] : null;

    public LocalApic GetLocalApic(int cpuIndex)
    {
        if ((uint)cpuIndex >= (uint)_apics.Length)
            throw new ArgumentOutOfRangeException(nameof(cpuIndex), cpuIndex, $"This VM has vCPUs 0 to {_apics.Length - 1}.");
        return _apics[cpuIndex];
    }

    public void SetIrq(int gsi, bool level)
    {
        if ((uint)gsi >= GsiCount)
            throw new ArgumentOutOfRangeException(nameof(gsi), gsi, $"The emulated interrupt controllers have GSIs 0 to {GsiCount - 1}.");
        if (gsi is 0 or 2)
        {
            lock (_pin2Gate)
            {
                if (gsi == 0)
                {
                    _gsi0Level = level;
                    Pic.SetIrq(0, level);
                }
                else
                {
                    _gsi2Level = level;
                }
                IoApic.SetPin(2, _gsi0Level || _gsi2Level);
            }
            return;
        }
        if (gsi < 16) Pic.SetIrq(gsi, level);
        IoApic.SetPin(gsi, level);
    }
}
