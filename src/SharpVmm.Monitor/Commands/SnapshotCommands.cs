using System.Text.Json.Nodes;
using SharpVmm.Core;
using SharpVmm.Machine.Lifecycle;
using SharpVmm.Machine.State;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;
using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// QEMU 6.0+'s <c>snapshot-save</c> and <c>snapshot-load</c>. QEMU runs them as jobs and stores the VM state inside a
/// qcow2 image; SharpVmm completes them before replying and keeps the whole VM (vCPUs, devices, RAM) in one snapshot
/// file. Two ways to name it:
/// <list type="bullet">
/// <item><c>{"file": "/path/vm.snap"}</c> (SharpVmm's form);</item>
/// <item>QEMU's arguments <c>job-id</c>, <c>tag</c>, <c>vmstate</c>, <c>devices</c>: the file is <c>TAG.snap</c> in the
/// current directory. <c>vmstate</c> and <c>devices</c> name block nodes in QEMU; they are accepted and not used,
/// because disks are not copied into the snapshot: restore it with the disks as they were when it was taken.</item>
/// </list>
/// A running VM is paused for the save and resumed after (QEMU's behaviour); a load into a running VM pauses it,
/// replaces its state and resumes it. The reply says what was done.
/// </summary>
public static class SnapshotCommands
{
    public static void Register(QmpCommandTable table, VmMonitor vm)
    {
        QmpParameter[] args =
        [
            Opt("file", QmpType.String), Opt("job-id", QmpType.String), Opt("tag", QmpType.String),
            Opt("vmstate", QmpType.String), Opt("devices", QmpType.Array),
        ];
        table.Register("snapshot-save", call =>
        {
            var (path, tag) = Target(call);
            RequireAlive(vm);
            var r = Run(() => vm.WithQuiescentVm(() => VmSnapshot.Save(vm.Vm, path, tag)));
            return new JsonObject
            {
                ["file"] = r.Path, ["size"] = r.FileBytes, ["ram-pages"] = r.StoredPages, ["zero-pages"] = r.ZeroPages,
                ["time-ms"] = Math.Round(r.Elapsed.TotalMilliseconds, 1),
            };
        }, args);
        table.Register("snapshot-load", call =>
        {
            var (path, _) = Target(call);
            RequireAlive(vm);
            var r = Run(() => vm.WithQuiescentVm(() => VmSnapshot.Restore(vm.Vm, path)));
            return new JsonObject
            {
                ["file"] = Path.GetFullPath(path),
                ["ram"] = r.Mode == RamRestoreMode.MappedLazily ? "mapped" : "read",
                ["detail"] = r.Describe(),
                ["time-ms"] = Math.Round(r.Elapsed.TotalMilliseconds, 1),
            };
        }, args);
    }

    private static (string Path, string Tag) Target(QmpCall call)
    {
        string? file = call.GetString("file");
        string? tag = call.GetString("tag");
        if (call.Arguments["devices"] is JsonArray devices)
            foreach (var d in devices)
                if (d is not JsonValue v || !v.TryGetValue(out string? _))
                    throw QmpException.Generic("Invalid parameter type for 'devices', expected: array of strings");
        if (file is not null)
        {
            if (file.Length == 0) throw QmpException.Generic("Parameter 'file' must not be empty");
            return (file, tag ?? Path.GetFileNameWithoutExtension(file));
        }
        if (tag is null)
            throw QmpException.Generic("Parameter 'file' is missing (or give QEMU's 'tag' to use TAG.snap in the current directory)");
        if (tag.Length == 0 || tag.IndexOfAny(['/', '\\', '\0']) >= 0 || tag is "." or "..")
            throw QmpException.Generic($"Snapshot tag '{tag}' cannot name a file: use letters, digits, '-', '_' or '.'");
        return (tag + ".snap", tag);
    }

    private static void RequireAlive(VmMonitor vm)
    {
        if (vm.Vm.State == VmState.Stopped) throw QmpException.Generic("The VM has shut down: there is nothing to snapshot or load into");
    }

    private static T Run<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (VmmException e) when (e is not QmpException)
        {
            throw QmpException.Generic(e.Message);
        }
    }
}
