using SharpVmm.Core;

namespace SharpVmm.Kvm;

/// <summary>What kind of KVM failure a <see cref="KvmException"/> reports, so callers can react (fall back to emu, tell the user to fix permissions).</summary>
public enum KvmErrorKind
{
    /// <summary>/dev/kvm does not exist: the kvm module is not loaded or the host has no KVM.</summary>
    NoDevice,
    /// <summary>/dev/kvm exists but this user may not open it (EACCES/EPERM).</summary>
    NoPermission,
    /// <summary>KVM_GET_API_VERSION returned something other than 12.</summary>
    ApiMismatch,
    /// <summary>A KVM capability this VMM needs is absent.</summary>
    MissingCapability,
    /// <summary>An ioctl or mmap failed; <see cref="KvmException.Errno"/> says why.</summary>
    IoctlFailed,
    /// <summary>A caller passed a value KVM cannot take (bad slot, bad vCPU index, inconsistent state).</summary>
    InvalidArgument,
}

/// <summary>A failure talking to /dev/kvm. The message names the operation and what the user can do about it.</summary>
public sealed class KvmException : VmmException
{
    public KvmException(KvmErrorKind kind, string message, int errno = 0) : base(message)
    {
        Kind = kind;
        Errno = errno;
    }

    public KvmErrorKind Kind { get; }

    /// <summary>The host errno of the failing call, or 0.</summary>
    public int Errno { get; }

    internal static KvmException Ioctl(string what, int errno)
        => new(KvmErrorKind.IoctlFailed, $"KVM {what} failed: {Libc.Describe(errno)}", errno);
}
