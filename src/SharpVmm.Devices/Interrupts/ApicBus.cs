namespace SharpVmm.Devices.Interrupts;

/// <summary>
/// The system bus between the IOAPIC and the local APICs: resolves a message's destination (physical ID, logical
/// flat/cluster, shorthand), arbitrates lowest-priority delivery, and carries EOI broadcasts back to the IOAPIC.
/// The set of APICs is fixed once the machine is built; lookups take no lock.
/// </summary>
public sealed class ApicBus
{
    private LocalApic[] _apics = [];
    private IoApic? _ioApic;

    internal void Attach(LocalApic apic)
    {
        var grown = new LocalApic[_apics.Length + 1];
        _apics.CopyTo(grown, 0);
        grown[^1] = apic;
        Volatile.Write(ref _apics, grown);
    }

    internal void AttachIoApic(IoApic ioApic) => _ioApic = ioApic;

    /// <summary>Delivers a message from an IOAPIC (no shorthand). Returns whether any APIC accepted it.</summary>
    public bool Deliver(in ApicMessage message) => Route(null, message);

    internal void SendIpi(LocalApic source, in ApicMessage message) => Route(source, message);

    internal void BroadcastEoi(int vector) => _ioApic?.HandleEoi(vector);

    private bool Route(LocalApic? source, in ApicMessage message)
    {
        LocalApic[] apics = Volatile.Read(ref _apics);
        switch (message.Shorthand)
        {
            case ApicShorthand.Self:
                return source is not null && source.Accept(message);
            case ApicShorthand.AllIncludingSelf:
            case ApicShorthand.AllExcludingSelf:
            {
                bool any = false;
                foreach (LocalApic apic in apics)
                {
                    if (message.Shorthand == ApicShorthand.AllExcludingSelf && ReferenceEquals(apic, source)) continue;
                    any |= apic.Accept(message);
                }
                return any;
            }
        }

        if (message.Mode == ApicDeliveryMode.LowestPriority)
        {
            LocalApic? best = null;
            foreach (LocalApic apic in apics)
            {
                if (!Matches(apic, message) || !apic.IsSoftwareEnabled) continue;
                if (best is null || apic.ArbitrationPriority < best.ArbitrationPriority) best = apic;
            }
            return best is not null && best.Accept(message);
        }

        bool accepted = false;
        foreach (LocalApic apic in apics)
        {
            if (Matches(apic, message)) accepted |= apic.Accept(message);
        }
        return accepted;
    }

    private static bool Matches(LocalApic apic, in ApicMessage message)
        => message.LogicalDestination
            ? apic.MatchesLogical(message.Destination, message.X2ApicDestination)
            : apic.MatchesPhysical(message.Destination, message.X2ApicDestination);
}
