using System.Buffers.Binary;
using System.Text;

namespace SharpVmm.Machine.Migration;

/// <summary>
/// A reply from the target (see <see cref="MigrationProtocol"/>): a pre-copy round received and applied, or the final
/// word: loaded and resuming, or refused with a reason.
/// </summary>
public sealed record MigrationAck(bool Accepted, string Message)
{
    private const byte StatusLoaded = 0, StatusRefused = 1, StatusRound = 2;

    /// <summary>For a round acknowledgement, the round the target has applied; null for the final reply.</summary>
    public int? Round { get; init; }

    public static MigrationAck RoundReceived(int round) => new(true, round.ToString(System.Globalization.CultureInfo.InvariantCulture)) { Round = round };

    public void WriteTo(Stream output)
    {
        byte[] msg = Encoding.UTF8.GetBytes(Message.Length > 500 ? Message[..500] : Message);
        var buf = new byte[8 + 1 + 2 + msg.Length + 4];
        MigrationProtocol.AckMagic.CopyTo(buf);
        buf[8] = Round is not null ? StatusRound : Accepted ? StatusLoaded : StatusRefused;
        BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(9), (ushort)msg.Length);
        msg.CopyTo(buf, 11);
        BinaryPrimitives.WriteUInt32LittleEndian(buf.AsSpan(11 + msg.Length), Crc32C.Compute(buf.AsSpan(0, 11 + msg.Length)));
        output.Write(buf);
        output.Flush();
    }

    /// <summary>Reads the ack; a closed connection or a garbled reply is a <see cref="MigrationException"/>.</summary>
    public static MigrationAck ReadFrom(Stream input)
    {
        var head = new byte[11];
        Fill(input, head);
        if (!head.AsSpan(0, 8).SequenceEqual(MigrationProtocol.AckMagic) || head[8] > StatusRound)
            throw new MigrationException("the target answered with something that is not a SharpVmm migration ack");
        int len = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(9));
        if (len > 1024) throw new MigrationException("the target's migration ack is garbled (message too long)");
        var rest = new byte[len + 4];
        Fill(input, rest);
        uint crc = Crc32C.Append(Crc32C.Compute(head), rest.AsSpan(0, len));
        if (crc != BinaryPrimitives.ReadUInt32LittleEndian(rest.AsSpan(len)))
            throw new MigrationException("the target's migration ack failed its checksum");
        string message = Encoding.UTF8.GetString(rest, 0, len);
        if (head[8] != StatusRound) return new MigrationAck(head[8] == StatusLoaded, message);
        if (!int.TryParse(message, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int round))
            throw new MigrationException("the target's round acknowledgement is garbled");
        return RoundReceived(round);
    }

    private static void Fill(Stream s, byte[] b)
    {
        int done = 0;
        while (done < b.Length)
        {
            int n = s.Read(b, done, b.Length - done);
            if (n == 0) throw new MigrationException("the target closed the connection without acknowledging the migration");
            done += n;
        }
    }
}
