namespace SharpVmm.Testing;

/// <summary>Files of the repository the tests were built from.</summary>
public static class RepoFiles
{
    /// <summary>The repository root (the directory holding SharpVmm.slnx), or null when tests run outside it.</summary>
    public static string? Root
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "SharpVmm.slnx"))) return d.FullName;
            return null;
        }
    }

    /// <summary>The native (AOT) sharpvmm: $SHARPVMM_BIN, else artifacts/bin/sharpvmm in the repository; null if absent.</summary>
    public static string? NativeBinary
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("SHARPVMM_BIN");
            if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
            return Root is { } root && File.Exists(Path.Combine(root, "artifacts", "bin", "sharpvmm"))
                ? Path.Combine(root, "artifacts", "bin", "sharpvmm") : null;
        }
    }
}
