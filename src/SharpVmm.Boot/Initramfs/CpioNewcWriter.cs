using System.Text;

namespace SharpVmm.Boot.Initramfs;

/// <summary>
/// Writes the "newc" (SVR4 without CRC) cpio format the kernel's initramfs unpacker reads:
/// a 110-byte ASCII header ("070701" + 13 eight-digit hex fields), the NUL-terminated name and the
/// data, each padded to a multiple of 4 bytes, closed by a "TRAILER!!!" entry.
/// </summary>
public sealed class CpioNewcWriter
{
    public const string Magic = "070701";
    public const string TrailerName = "TRAILER!!!";
    public const int HeaderSize = 110;

    private readonly Stream _output;
    private long _position;
    private uint _nextInode = 1;
    private bool _finished;

    public CpioNewcWriter(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite)
            throw new ArgumentException("the cpio output stream must be writable", nameof(output));
        _output = output;
    }

    /// <summary>Bytes written so far.</summary>
    public long Position => _position;

    /// <summary>Writes one entry. <paramref name="permissions"/> are the low 12 mode bits; mtime, uid and gid are 0 so archives are reproducible.</summary>
    public void WriteEntry(string name, CpioEntryType type, UnixFileMode permissions, ReadOnlySpan<byte> data,
        uint rdevMajor = 0, uint rdevMinor = 0)
    {
        if (_finished)
            throw new InvalidOperationException("the cpio archive is already closed by its trailer");
        if (type is CpioEntryType.Directory or CpioEntryType.CharacterDevice or CpioEntryType.BlockDevice && !data.IsEmpty)
            throw new InitramfsException($"cpio entry '{name}': a {type} has no data");
        uint mode = (uint)type | ((uint)permissions & 0xFFF);
        uint nlink = type == CpioEntryType.Directory ? 2u : 1u;
        WriteRecord(name, _nextInode++, mode, nlink, data, rdevMajor, rdevMinor);
    }

    /// <summary>Writes a regular file whose data comes from a stream of known length (avoids loading big files).</summary>
    public void WriteFile(string name, UnixFileMode permissions, Stream data, long length)
    {
        if (_finished)
            throw new InvalidOperationException("the cpio archive is already closed by its trailer");
        if (length is < 0 or > uint.MaxValue)
            throw new InitramfsException($"cpio entry '{name}': {length} bytes does not fit the newc format's 32-bit size field");
        uint mode = (uint)CpioEntryType.RegularFile | ((uint)permissions & 0xFFF);
        WriteHeaderAndName(name, _nextInode++, mode, 1, (uint)length, 0, 0);
        var buffer = new byte[81920];
        long left = length;
        while (left > 0)
        {
            int n = data.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n == 0)
                throw new InitramfsException($"cpio entry '{name}': the file became shorter while it was read (expected {length} bytes)");
            Write(buffer.AsSpan(0, n));
            left -= n;
        }
        Pad();
    }

    /// <summary>Closes the archive with the TRAILER!!! entry.</summary>
    public void Finish()
    {
        if (_finished)
            return;
        WriteRecord(TrailerName, 0, 0, 1, [], 0, 0);
        _finished = true;
    }

    private void WriteRecord(string name, uint inode, uint mode, uint nlink, ReadOnlySpan<byte> data, uint rdevMajor, uint rdevMinor)
    {
        if ((ulong)data.Length > uint.MaxValue)
            throw new InitramfsException($"cpio entry '{name}' is too large for the newc format");
        WriteHeaderAndName(name, inode, mode, nlink, (uint)data.Length, rdevMajor, rdevMinor);
        Write(data);
        Pad();
    }

    private void WriteHeaderAndName(string name, uint inode, uint mode, uint nlink, uint fileSize, uint rdevMajor, uint rdevMinor)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('\0', StringComparison.Ordinal))
            throw new InitramfsException($"cpio entry name '{name.Replace("\0", "\\0", StringComparison.Ordinal)}' contains a NUL byte");
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        Span<byte> header = stackalloc byte[HeaderSize];
        Encoding.ASCII.GetBytes(Magic, header);
        int at = 6;
        Hex(header, ref at, inode);
        Hex(header, ref at, mode);
        Hex(header, ref at, 0); // uid
        Hex(header, ref at, 0); // gid
        Hex(header, ref at, nlink);
        Hex(header, ref at, 0); // mtime: 0 so the same inputs give the same bytes
        Hex(header, ref at, fileSize);
        Hex(header, ref at, 0); // devmajor
        Hex(header, ref at, 0); // devminor
        Hex(header, ref at, rdevMajor);
        Hex(header, ref at, rdevMinor);
        Hex(header, ref at, (uint)nameBytes.Length + 1);
        Hex(header, ref at, 0); // check (only used by the "070702" CRC format)
        Write(header);
        Write(nameBytes);
        Write([0]);
        Pad();
    }

    private static void Hex(Span<byte> header, ref int at, uint value)
    {
        const string digits = "0123456789ABCDEF";
        for (int i = 7; i >= 0; i--)
        {
            header[at + i] = (byte)digits[(int)(value & 0xF)];
            value >>= 4;
        }
        at += 8;
    }

    private void Pad()
    {
        int pad = (int)((4 - (_position & 3)) & 3);
        if (pad > 0)
            Write(stackalloc byte[pad]);
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        _output.Write(bytes);
        _position += bytes.Length;
    }
}
