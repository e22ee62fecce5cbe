using SharpVmm.Core;

namespace SharpVmm.Boot;

/// <summary>
/// A guest image or boot configuration that cannot be loaded: not a bzImage, a truncated file, a kernel too old for
/// the 64-bit entry, an initrd or binary that does not fit, ACPI tables that cannot be built. The message says what to
/// change.
/// </summary>
public sealed class BootException : VmmException
{
    public BootException(string message) : base(message) { }
    public BootException(string message, Exception inner) : base(message, inner) { }
}
