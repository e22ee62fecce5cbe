namespace SharpVmm.Fuzz.Targets;

/// <summary>One file per process for the targets whose parser reads a path: in /dev/shm where it exists, so a run costs no disk I/O.</summary>
internal static class ScratchFile
{
    private static readonly string s_dir = CreateDir();

    private static string CreateDir()
    {
        string root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string dir = Path.Combine(root, $"sharpvmm-fuzz-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } };
        return dir;
    }

    public static string Write(string name, byte[] data)
    {
        string path = Path.Combine(s_dir, name);
        File.WriteAllBytes(path, data);
        return path;
    }
}
