using SharpVmm.Core;

namespace SharpVmm.Cli.Qemu;

/// <summary>An argument the QEMU personality refuses; the message names the option, as libvirt shows it to its user.</summary>
public sealed class QemuArgException(string option, string message) : ConfigurationException($"{option}: {message}")
{
    public string Option { get; } = option;
}
