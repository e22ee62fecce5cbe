namespace SharpVmm.Testing;

/// <summary>A scratch directory for one test, removed (best effort) at dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("sharpvmm-test-").FullName;

    /// <summary>The path of <paramref name="name"/> inside the directory.</summary>
    public string this[string name] => System.IO.Path.Combine(Path, name);

    public string File(string name) => this[name];

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
