using SharpVmm.Core;

namespace SharpVmm.Boot.Initramfs;

/// <summary>An initramfs that cannot be built: bad entry, unreadable or malformed kernel module, missing guest file.</summary>
public class InitramfsException : VmmException
{
    public InitramfsException(string message) : base(message) { }
    public InitramfsException(string message, Exception inner) : base(message, inner) { }
}
