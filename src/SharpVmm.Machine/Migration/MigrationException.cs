using SharpVmm.Core;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// A live migration that cannot go on: a refused or broken connection, a stream that is truncated, corrupt or from
/// an incompatible VM, or a target that refused the machine state. The message says which, and what to do.
/// </summary>
public sealed class MigrationException : VmmException
{
    public MigrationException(string message) : base(message) { }
    public MigrationException(string message, Exception inner) : base(message, inner) { }
}
