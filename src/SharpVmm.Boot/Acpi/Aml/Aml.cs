using System.Buffers.Binary;

namespace SharpVmm.Boot.Acpi;

/// <summary>
/// A small AML encoder (ACPI spec, "ACPI Machine Language (AML) Specification"): each method returns the bytes of one
/// term, and terms that hold others (Scope, Device, Method, Package, Buffer) take their already-encoded contents, which
/// is what lets every PkgLength be computed exactly. Enough of the language for a VMM's DSDT: names, scopes, devices,
/// methods with Return, integers, strings, EISA IDs, packages and buffers, and what an event method needs: operation
/// regions with their fields, Store, And, If and Notify on locals and named objects.
/// </summary>
public static class Aml
{
    public const byte ZeroOp = 0x00, OneOp = 0x01, OnesOp = 0xFF;
    public const byte NameOp = 0x08, BytePrefix = 0x0A, WordPrefix = 0x0B, DWordPrefix = 0x0C, StringPrefix = 0x0D, QWordPrefix = 0x0E;
    public const byte ScopeOp = 0x10, BufferOp = 0x11, PackageOp = 0x12, MethodOp = 0x14;
    public const byte DualNamePrefix = 0x2E, MultiNamePrefix = 0x2F, RootChar = 0x5C, ParentPrefixChar = 0x5E;
    public const byte ExtOpPrefix = 0x5B, DeviceOp = 0x82, ReturnOp = 0xA4;
    public const byte OpRegionOp = 0x80, FieldOp = 0x81, StoreOp = 0x70, AndOp = 0x7B, NotifyOp = 0x86, IfOp = 0xA0;
    public const byte Local0Op = 0x60, Arg0Op = 0x68;

    /// <summary>OperationRegion address spaces.</summary>
    public const byte SystemMemory = 0x00, SystemIo = 0x01;

    /// <summary>Field flags: access width (bits 3:0), lock rule (bit 4), update rule (bits 6:5).</summary>
    public const byte ByteAcc = 1, WordAcc = 2, DWordAcc = 3, Lock = 0x10, Preserve = 0x00, WriteAsOnes = 0x20, WriteAsZeros = 0x40;

    /// <summary>
    /// An integer in the shortest encoding: Zero/One opcodes, then byte, word, dword or qword prefix — the choice iasl
    /// makes, so our bytes match a compiled ASL file.
    /// </summary>
    public static byte[] Integer(ulong value)
    {
        if (value == 0) return [ZeroOp];
        if (value == 1) return [OneOp];
        if (value <= 0xFF) return [BytePrefix, (byte)value];
        if (value <= 0xFFFF) return [WordPrefix, (byte)value, (byte)(value >> 8)];
        if (value <= 0xFFFF_FFFF)
        {
            var d = new byte[5];
            d[0] = DWordPrefix;
            BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(1), (uint)value);
            return d;
        }
        var q = new byte[9];
        q[0] = QWordPrefix;
        BinaryPrimitives.WriteUInt64LittleEndian(q.AsSpan(1), value);
        return q;
    }

    /// <summary>A string constant: ASCII 0x01..0x7F, NUL-terminated.</summary>
    public static byte[] String(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var b = new byte[value.Length + 2];
        b[0] = StringPrefix;
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (c == 0 || c > 0x7F) throw new ArgumentException($"AML strings are ASCII without NUL; got U+{(int)c:X4}", nameof(value));
            b[i + 1] = (byte)c;
        }
        return b;
    }

    /// <summary>
    /// EISAID("PNP0501"): three upper-case letters packed 5 bits each (A = 1) into a big-endian word, then four hex
    /// digits as a big-endian word; the four bytes are emitted as a DWord in that order.
    /// </summary>
    public static byte[] EisaId(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (id.Length != 7 || !IsUpper(id[0]) || !IsUpper(id[1]) || !IsUpper(id[2]) || !ushort.TryParse(id.AsSpan(3), System.Globalization.NumberStyles.AllowHexSpecifier, null, out ushort product))
            throw new ArgumentException($"an EISA ID is three letters A-Z and four hex digits, not \"{id}\"", nameof(id));
        int vendor = ((id[0] - '@') << 10) | ((id[1] - '@') << 5) | (id[2] - '@');
        return [DWordPrefix, (byte)(vendor >> 8), (byte)vendor, (byte)(product >> 8), (byte)product];
    }

    private static bool IsUpper(char c) => c is >= 'A' and <= 'Z';

    /// <summary>
    /// A NameString: optional root '\' or parent '^' prefixes, then dot-separated segments of up to four characters
    /// (padded with '_'). "\_SB.COM1", "_HID", "^PCI0" are all fine.
    /// </summary>
    public static byte[] NameString(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = new List<byte>(path.Length + 4);
        int i = 0;
        if (path.StartsWith('\\')) { bytes.Add(RootChar); i = 1; }
        else while (i < path.Length && path[i] == '^') { bytes.Add(ParentPrefixChar); i++; }

        var rest = path[i..];
        if (rest.Length == 0) { bytes.Add(ZeroOp); return [.. bytes]; } // NullName
        var segments = rest.Split('.');
        if (segments.Length > 255) throw new ArgumentException($"too many name segments in \"{path}\"", nameof(path));
        if (segments.Length == 2) bytes.Add(DualNamePrefix);
        else if (segments.Length > 2) { bytes.Add(MultiNamePrefix); bytes.Add((byte)segments.Length); }
        foreach (var s in segments) AddSegment(bytes, s, path);
        return [.. bytes];
    }

    private static void AddSegment(List<byte> bytes, string segment, string path)
    {
        if (segment.Length is 0 or > 4)
            throw new ArgumentException($"AML name segments have 1 to 4 characters: \"{segment}\" in \"{path}\"", nameof(path));
        for (int k = 0; k < 4; k++)
        {
            char c = k < segment.Length ? segment[k] : '_';
            bool ok = c is (>= 'A' and <= 'Z') or '_' || (k > 0 && c is >= '0' and <= '9');
            if (!ok) throw new ArgumentException($"'{c}' is not allowed in the AML name segment \"{segment}\" (A-Z, _, and 0-9 after the first)", nameof(path));
            bytes.Add((byte)c);
        }
    }

    /// <summary>
    /// PkgLength for <paramref name="contentLength"/> bytes that follow it. The encoded length counts the PkgLength
    /// bytes themselves: one byte up to 63, otherwise a lead byte holding the count of following bytes (bits 7-6) and
    /// the low nibble, then the remaining bits 8 at a time.
    /// </summary>
    public static byte[] PkgLength(int contentLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(contentLength);
        if (contentLength + 1 <= 0x3F) return [(byte)(contentLength + 1)];
        for (int extra = 1; extra <= 3; extra++)
        {
            long total = contentLength + 1L + extra;
            if (total < 1L << (4 + 8 * extra))
            {
                var b = new byte[1 + extra];
                b[0] = (byte)((extra << 6) | (int)(total & 0xF));
                for (int k = 1; k <= extra; k++) b[k] = (byte)(total >> (4 + 8 * (k - 1)));
                return b;
            }
        }
        throw new ArgumentOutOfRangeException(nameof(contentLength), "an AML package cannot exceed 2^28 bytes");
    }

    /// <summary>Name(name, value).</summary>
    public static byte[] Name(string name, byte[] value) => Concat([NameOp], NameString(name), value);

    /// <summary>Scope(name) { terms }.</summary>
    public static byte[] Scope(string name, params byte[][] terms) => WithPkgLength([ScopeOp], Concat(NameString(name), Concat(terms)));

    /// <summary>Device(name) { terms }.</summary>
    public static byte[] Device(string name, params byte[][] terms) => WithPkgLength([ExtOpPrefix, DeviceOp], Concat(NameString(name), Concat(terms)));

    /// <summary>Method(name, argCount, Serialized/NotSerialized) { terms }; sync level 0.</summary>
    public static byte[] Method(string name, int argCount, bool serialized, params byte[][] terms)
    {
        if (argCount is < 0 or > 7) throw new ArgumentOutOfRangeException(nameof(argCount), "AML methods take 0 to 7 arguments");
        byte flags = (byte)(argCount | (serialized ? 0x08 : 0));
        return WithPkgLength([MethodOp], Concat(NameString(name), [flags], Concat(terms)));
    }

    /// <summary>Return(value).</summary>
    public static byte[] Return(byte[] value) => Concat([ReturnOp], value);

    /// <summary>Package() { elements }: at most 255 elements (larger needs VarPackage, which nothing here uses).</summary>
    public static byte[] Package(params byte[][] elements)
    {
        ArgumentNullException.ThrowIfNull(elements);
        if (elements.Length > 255) throw new ArgumentException("a Package holds at most 255 elements", nameof(elements));
        return WithPkgLength([PackageOp], Concat([(byte)elements.Length], Concat(elements)));
    }

    /// <summary>Buffer() { bytes } with the size given as an integer term.</summary>
    public static byte[] Buffer(ReadOnlySpan<byte> data) => WithPkgLength([BufferOp], Concat(Integer((ulong)data.Length), data.ToArray()));

    /// <summary>LocalN (0-7) as an operand or target.</summary>
    public static byte[] Local(int n)
    {
        if (n is < 0 or > 7) throw new ArgumentOutOfRangeException(nameof(n), "AML has Local0 to Local7");
        return [(byte)(Local0Op + n)];
    }

    /// <summary>ArgN (0-6) of the method being run.</summary>
    public static byte[] Arg(int n)
    {
        if (n is < 0 or > 6) throw new ArgumentOutOfRangeException(nameof(n), "AML methods have Arg0 to Arg6");
        return [(byte)(Arg0Op + n)];
    }

    /// <summary>A reference to a named object (a field unit, a device) as an operand.</summary>
    public static byte[] Ref(string path) => NameString(path);

    /// <summary>OperationRegion(name, space, offset, length).</summary>
    public static byte[] OperationRegion(string name, byte space, ulong offset, ulong length)
        => Concat([ExtOpPrefix, OpRegionOp], NameString(name), [space], Integer(offset), Integer(length));

    /// <summary>Field(region, flags) { name, bits; ... }: named fields one after the other from bit 0 of the region.</summary>
    public static byte[] Field(string region, byte flags, params (string Name, int Bits)[] fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var list = new List<byte[]> { NameString(region), new[] { flags } };
        foreach (var (name, bits) in fields)
        {
            if (name.Length is 0 or > 4 || name.StartsWith('\\') || name.Contains('.'))
                throw new ArgumentException($"a field name is one name segment, not \"{name}\"", nameof(fields));
            if (bits < 1) throw new ArgumentOutOfRangeException(nameof(fields), "a field is at least one bit wide");
            list.Add(Concat(NameString(name), FieldWidth(bits)));
        }
        return WithPkgLength([ExtOpPrefix, FieldOp], Concat([.. list]));
    }

    /// <summary>
    /// A field's width in bits, in PkgLength's encoding but holding the plain number (a package's length also counts
    /// its own bytes; a field width does not).
    /// </summary>
    private static byte[] FieldWidth(int bits)
    {
        if (bits <= 0x3F) return [(byte)bits];
        for (int extra = 1; extra <= 3; extra++)
        {
            if (bits >= 1L << (4 + 8 * extra)) continue;
            var b = new byte[1 + extra];
            b[0] = (byte)((extra << 6) | (bits & 0xF));
            for (int k = 1; k <= extra; k++) b[k] = (byte)(bits >> (4 + 8 * (k - 1)));
            return b;
        }
        throw new ArgumentOutOfRangeException(nameof(bits), "a field is narrower than 2^28 bits");
    }

    /// <summary>Store(source, target): <c>target = source</c>.</summary>
    public static byte[] Store(byte[] source, byte[] target) => Concat([StoreOp], source, target);

    /// <summary>And(a, b) as an expression (no target): <c>a &amp; b</c>.</summary>
    public static byte[] And(byte[] a, byte[] b) => Concat([AndOp], a, b, [ZeroOp]);

    /// <summary>If(predicate) { terms }: the terms run when the predicate is non-zero.</summary>
    public static byte[] If(byte[] predicate, params byte[][] terms) => WithPkgLength([IfOp], Concat(predicate, Concat(terms)));

    /// <summary>Notify(object, value): tells the OS driver of the object about an event (0x80: a button was pressed).</summary>
    public static byte[] Notify(string path, ulong value) => Concat([NotifyOp], NameString(path), Integer(value));

    private static byte[] WithPkgLength(byte[] opcode, byte[] content) => Concat(opcode, PkgLength(content.Length), content);

    public static byte[] Concat(params byte[][] parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        int n = 0;
        foreach (var p in parts) n += p.Length;
        var r = new byte[n];
        int o = 0;
        foreach (var p in parts) { p.CopyTo(r, o); o += p.Length; }
        return r;
    }
}
