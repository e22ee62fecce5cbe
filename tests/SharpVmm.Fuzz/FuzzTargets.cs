using SharpVmm.Fuzz.Targets;

namespace SharpVmm.Fuzz;

/// <summary>
/// The targets by name. Each takes arbitrary bytes and must end in one of the project's clear errors (its own
/// exception types, IOException for file formats, QmpException on the monitor) or succeed; any other exception is a
/// finding: a crash a user would see instead of a one-line error.
/// </summary>
public static class FuzzTargets
{
    private static readonly (string Name, Action<byte[]> Run)[] All =
    [
        ("qcow2", Qcow2Target.Run),
        ("img-check", ImgCheckTarget.Run),
        ("virtqueue", VirtqueueTarget.Run),
        ("qmp", QmpTarget.Run),
        ("config", ConfigFileTarget.Run),
        ("snapshot", SnapshotTarget.Run),
        ("migration", MigrationStreamTarget.Run),
    ];

    public static IEnumerable<string> Names => All.Select(t => t.Name);

    public static Action<byte[]>? Find(string name) => Array.Find(All, t => t.Name == name).Run;
}
