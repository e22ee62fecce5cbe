namespace SharpVmm.Core.State;

/// <summary>
/// A component whose state a snapshot or a migration carries: a device, an interrupt controller, an accelerator.
/// The machine writes each one as its own length-prefixed, versioned section, so a reader can check that every
/// section belongs to the device it is loaded into and that nothing is missing, extra or truncated.
/// </summary>
public interface IStateful
{
    /// <summary>What kind of state this is ("uart16550", "pit8254", ...): a section is only ever loaded into the same kind.</summary>
    string StateId { get; }

    /// <summary>The newest layout this code writes; <see cref="LoadState"/> accepts 1 up to this.</summary>
    int StateVersion { get; }

    /// <summary>Writes the state. Called with the VM paused (or not yet started): nothing changes meanwhile.</summary>
    void SaveState(StateWriter writer);

    /// <summary>
    /// Replaces the state with one <see cref="SaveState"/> wrote at <paramref name="version"/>. Throws
    /// <see cref="StateFormatException"/> on anything malformed; the caller checks the section was read to its end.
    /// </summary>
    void LoadState(StateReader reader, int version);
}
