using System.IO.Compression;
using System.Text;

namespace SharpVmm.Boot.Initramfs;

/// <summary>
/// Collects the files of an initramfs and writes them as a gzip-compressed newc cpio archive.
/// Paths are archive paths ("/init", "bin/busybox"; a leading '/' is optional). Parent directories are
/// added automatically (mode 0755) before their children, and entries keep the order they were added in,
/// so the same calls give byte-identical output.
/// </summary>
public sealed class InitramfsBuilder
{
    public const UnixFileMode DirectoryMode = (UnixFileMode)0x1ED;   // 0755
    public const UnixFileMode FileMode = (UnixFileMode)0x1A4;        // 0644
    public const UnixFileMode ExecutableMode = (UnixFileMode)0x1ED;  // 0755
    public const UnixFileMode SymlinkMode = (UnixFileMode)0x1FF;     // 0777

    private readonly List<Entry> _entries = [];
    private readonly Dictionary<string, Entry> _byPath = new(StringComparer.Ordinal);

    /// <summary>Archive paths in the order they will be written.</summary>
    public IEnumerable<string> Paths => _entries.Select(e => e.Path);

    public InitramfsBuilder AddDirectory(string path, UnixFileMode mode = DirectoryMode)
    {
        string p = Normalize(path);
        if (_byPath.TryGetValue(p, out var existing))
        {
            if (existing.Type != CpioEntryType.Directory)
                throw new InitramfsException($"initramfs path '/{p}' is already a {existing.Type}, it cannot also be a directory");
            existing.Mode = mode;
            return this;
        }
        Add(new Entry(p, CpioEntryType.Directory, mode));
        return this;
    }

    public InitramfsBuilder AddFile(string path, ReadOnlySpan<byte> content, UnixFileMode mode = FileMode)
    {
        Add(new Entry(Normalize(path), CpioEntryType.RegularFile, mode) { Content = content.ToArray() });
        return this;
    }

    public InitramfsBuilder AddFile(string path, string text, UnixFileMode mode = FileMode) =>
        AddFile(path, Encoding.UTF8.GetBytes(text), mode);

    /// <summary>Adds a file copied from the host when <see cref="Build"/> runs; its mode defaults to the host file's permissions.</summary>
    public InitramfsBuilder AddHostFile(string path, string hostPath, UnixFileMode? mode = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostPath);
        var info = new FileInfo(hostPath);
        if (!info.Exists)
            throw new InitramfsException($"cannot add '{hostPath}' to the initramfs: the file does not exist");
        UnixFileMode m = mode ?? (OperatingSystem.IsWindows() ? FileMode : info.UnixFileMode);
        Add(new Entry(Normalize(path), CpioEntryType.RegularFile, m) { HostPath = info.FullName });
        return this;
    }

    public InitramfsBuilder AddSymlink(string path, string target)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        Add(new Entry(Normalize(path), CpioEntryType.Symlink, SymlinkMode) { Content = Encoding.UTF8.GetBytes(target) });
        return this;
    }

    public InitramfsBuilder AddDevice(string path, CpioEntryType type, uint major, uint minor, UnixFileMode mode = (UnixFileMode)0x180)
    {
        if (type is not (CpioEntryType.CharacterDevice or CpioEntryType.BlockDevice))
            throw new ArgumentException($"a device node is a {nameof(CpioEntryType.CharacterDevice)} or a {nameof(CpioEntryType.BlockDevice)}, not a {type}", nameof(type));
        // Linux dev_t: 12-bit major, 20-bit minor.
        if (major > 0xFFF || minor > 0xFFFFF)
            throw new InitramfsException($"device node '{path}': {major}:{minor} is outside Linux's 12-bit major / 20-bit minor range");
        Add(new Entry(Normalize(path), type, mode) { Major = major, Minor = minor });
        return this;
    }

    public bool Contains(string path) => _byPath.ContainsKey(Normalize(path));

    /// <summary>Writes the archive, gzip-compressed by default (what the kernel and QEMU's -initrd take).</summary>
    public void Build(Stream output, InitramfsCompression compression = InitramfsCompression.Gzip)
    {
        ArgumentNullException.ThrowIfNull(output);
        switch (compression)
        {
            case InitramfsCompression.Gzip:
                using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
                    WriteCpio(gzip);
                break;
            case InitramfsCompression.None:
                WriteCpio(output);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(compression), compression, "unknown initramfs compression");
        }
    }

    /// <summary>Writes the uncompressed newc cpio archive.</summary>
    public void WriteCpio(Stream output)
    {
        var writer = new CpioNewcWriter(output);
        foreach (var e in _entries)
        {
            if (e.HostPath is not null)
            {
                FileStream file;
                try
                {
                    file = File.OpenRead(e.HostPath);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new InitramfsException($"cannot read '{e.HostPath}' for initramfs path '/{e.Path}': {ex.Message}", ex);
                }
                using (file)
                    writer.WriteFile(e.Path, e.Mode, file, file.Length);
            }
            else
            {
                writer.WriteEntry(e.Path, e.Type, e.Mode, e.Content, e.Major, e.Minor);
            }
        }
        writer.Finish();
    }

    private void Add(Entry entry)
    {
        if (_byPath.TryGetValue(entry.Path, out var existing))
            throw new InitramfsException($"initramfs path '/{entry.Path}' is added twice (first as a {existing.Type}, then as a {entry.Type})");
        int slash = entry.Path.LastIndexOf('/');
        if (slash > 0)
        {
            string parent = entry.Path[..slash];
            if (_byPath.TryGetValue(parent, out var p))
            {
                if (p.Type != CpioEntryType.Directory)
                    throw new InitramfsException($"cannot add '/{entry.Path}': its parent '/{parent}' is a {p.Type}, not a directory");
            }
            else
            {
                AddDirectory(parent);
            }
        }
        _entries.Add(entry);
        _byPath.Add(entry.Path, entry);
    }

    private static string Normalize(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string p = path.Trim('/');
        if (p.Length == 0)
            throw new InitramfsException($"'{path}' is not a valid initramfs path: the root directory exists already");
        foreach (var segment in p.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
                throw new InitramfsException($"'{path}' is not a valid initramfs path: use plain names separated by single '/' (no '.', '..' or '//')");
            if (segment.Contains('\0', StringComparison.Ordinal))
                throw new InitramfsException("an initramfs path contains a NUL byte");
        }
        return p;
    }

    private sealed class Entry(string path, CpioEntryType type, UnixFileMode mode)
    {
        public string Path { get; } = path;
        public CpioEntryType Type { get; } = type;
        public UnixFileMode Mode { get; set; } = mode;
        public byte[] Content { get; init; } = [];
        public string? HostPath { get; init; }
        public uint Major { get; init; }
        public uint Minor { get; init; }
    }
}
