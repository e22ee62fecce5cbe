using SharpVmm.Core;

namespace SharpVmm.Monitor.Protocol;

/// <summary>A QMP error reply: thrown by a command handler on the server, or by <see cref="Client.QmpClient"/> when the server answers with an error.</summary>
public sealed class QmpException(string errorClass, string description) : VmmException(description)
{
    public QmpException(QmpErrorClass errorClass, string description) : this(errorClass.ToString(), description) { }

    /// <summary>The wire name of the class ("GenericError", "CommandNotFound", ...); a string because a server may send classes we do not know.</summary>
    public string ErrorClass { get; } = errorClass;
    public string Description { get; } = description;

    public static QmpException Generic(string description) => new(QmpErrorClass.GenericError, description);
}

/// <summary>A QMP connection that failed or a peer that did not speak QMP (no greeting, closed mid-reply, timeout).</summary>
public sealed class QmpConnectionException : VmmException
{
    public QmpConnectionException(string message) : base(message) { }
    public QmpConnectionException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A QMP address that cannot be used (bad syntax, a non-loopback TCP host, a socket path already in use).</summary>
public sealed class QmpAddressException(string message) : VmmException(message);
