using SharpVmm.Monitor.Protocol;
using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// The monitor's named descriptors, as QEMU's getfd/closefd: a client sends a descriptor with SCM_RIGHTS along
/// with getfd {fdname}, and a later command names it (migrate {"uri": "fd:NAME"} takes it over). A name given again
/// replaces (and closes) the descriptor it had. All are closed with the monitor.
/// </summary>
public sealed class QmpFdTable : IDisposable
{
    private readonly Dictionary<string, int> _fds = new(StringComparer.Ordinal);

    public static QmpFdTable Register(QmpCommandTable table)
    {
        var fds = new QmpFdTable();
        table.Register("getfd", call =>
        {
            string name = call.GetString("fdname")!;
            if (name.Length > 0 && char.IsAsciiDigit(name[0]))
                throw QmpException.Generic("Parameter 'fdname' expects a name not starting with a digit");
            fds.Put(name, call.TakeReceivedFd());
            return null;
        }, Req("fdname", QmpType.String));
        table.Register("closefd", call =>
        {
            string name = call.GetString("fdname")!;
            if (!fds.TryTake(name, out int fd)) throw QmpException.Generic($"File descriptor named '{name}' not found");
            UnixFdPassing.Close(fd);
            return null;
        }, Req("fdname", QmpType.String));
        return fds;
    }

    public int Count
    {
        get { lock (_fds) return _fds.Count; }
    }

    public void Put(string name, int fd)
    {
        lock (_fds)
        {
            if (_fds.TryGetValue(name, out int old)) UnixFdPassing.Close(old);
            _fds[name] = fd;
        }
    }

    /// <summary>Removes the descriptor from the table: the caller owns it now.</summary>
    public bool TryTake(string name, out int fd)
    {
        lock (_fds) return _fds.Remove(name, out fd);
    }

    public void Dispose()
    {
        lock (_fds)
        {
            foreach (var (_, fd) in _fds) UnixFdPassing.Close(fd);
            _fds.Clear();
        }
    }
}
