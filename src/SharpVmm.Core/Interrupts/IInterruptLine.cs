namespace SharpVmm.Core.Interrupts;

/// <summary>One interrupt wire from a device, so devices never know GSI numbers or accelerators.</summary>
public interface IInterruptLine
{
    void Raise();
    void Lower();
    /// <summary>Edge-triggered use: raise then lower.</summary>
    void Pulse();
}

/// <summary>An <see cref="IInterruptLine"/> wired to one GSI of a router.</summary>
public sealed class IrqLine(IIrqRouter router, int gsi) : IInterruptLine
{
    public int Gsi { get; } = gsi;
    public void Raise() => router.SetIrq(Gsi, true);
    public void Lower() => router.SetIrq(Gsi, false);
    public void Pulse() { router.SetIrq(Gsi, true); router.SetIrq(Gsi, false); }
}
