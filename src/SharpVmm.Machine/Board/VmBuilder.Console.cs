using SharpVmm.Core;
using SharpVmm.Devices.Serial;
using SharpVmm.Devices.Virtio.Console;
using SharpVmm.Machine.Config;

namespace SharpVmm.Machine.Board;

public static partial class VmBuilder
{
    /// <summary>
    /// The virtio-console for <c>--console</c>, or null without one. <c>none</c> still gives the guest its /dev/hvc0,
    /// with output discarded and no input, as <c>--serial none</c> keeps COM1.
    /// </summary>
    private static VirtioConsole? CreateConsole(VmConfig config, List<IDisposable> disposables)
    {
        if (config.Console is not { } text) return null;
        // The serial grammar less pty: a virtio console has no terminal to offer.
        CharBackendSpec? spec = null;
        try { spec = CharBackendSpec.Parse(text); }
        catch (ConfigurationException) { }
        if (spec is null || spec.Kind == CharBackendKind.Pty)
            throw new ConfigurationException($"unknown --console backend '{text}': use stdio, file:PATH, unix:PATH or none");
        ICharBackend? backend;
        try
        {
            backend = spec.Create();
        }
        catch (ConfigurationException ex)
        {
            throw new ConfigurationException($"--console {text}: {ex.Message}");
        }
        var console = new VirtioConsole(backend ?? new DiscardBackend());
        disposables.Add(console);
        return console;
    }

    private sealed class DiscardBackend : ICharBackend
    {
        public void Write(ReadOnlySpan<byte> data) { }
        public void Start(Action<ReadOnlySpan<byte>> onInput) { }
        public void Dispose() { }
    }
}
