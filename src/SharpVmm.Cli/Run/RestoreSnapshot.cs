using SharpVmm.Machine;
using SharpVmm.Machine.State;

namespace SharpVmm.Cli.Run;

/// <summary><c>sharpvmm run ... --restore FILE</c>: loads the snapshot into the freshly built VM before it starts.</summary>
public static class RestoreSnapshot
{
    public static void Apply(VirtualMachine vm, string path)
    {
        // SHARPVMM_SNAPSHOT_READ=1 reads RAM up front instead of mapping it (for comparisons and odd filesystems).
        bool map = Environment.GetEnvironmentVariable("SHARPVMM_SNAPSHOT_READ") != "1";
        var result = VmSnapshot.Restore(vm, path, map);
        Console.Error.WriteLine($"sharpvmm: restored '{path}' in {result.Elapsed.TotalMilliseconds:F0} ms: {result.Describe()}");
    }
}
