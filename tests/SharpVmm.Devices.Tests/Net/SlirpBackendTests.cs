using System.Buffers.Binary;
using System.Collections.Concurrent;
using SharpVmm.Devices.Net;
using SharpVmm.Devices.Net.Slirp;

namespace SharpVmm.Devices.Tests.Net;

/// <summary>libslirp for real, driven with hand-built frames as a guest would send them.</summary>
public sealed class SlirpBackendTests : IDisposable
{
    private static readonly byte[] GuestMac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    private readonly BlockingCollection<byte[]> _received = [];
    private readonly SlirpBackend _slirp = new();

    public SlirpBackendTests() => _slirp.Start(f => _received.Add(f.ToArray()));

    public void Dispose()
    {
        _slirp.Dispose();
        _received.Dispose();
    }

    private byte[] Next(Func<byte[], bool> match)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_received.TryTake(out var f, TimeSpan.FromMilliseconds(200)) && match(f)) return f;
        }
        Assert.Fail("no matching frame from libslirp within 30 s");
        return [];
    }

    [Fact]
    public void The_gateway_answers_arp_for_10_0_2_2()
    {
        var arp = new byte[42];
        for (int i = 0; i < 6; i++) arp[i] = 0xff;            // broadcast
        GuestMac.CopyTo(arp, 6);
        arp[12] = 0x08; arp[13] = 0x06;                      // ARP
        arp[14] = 0; arp[15] = 1; arp[16] = 8; arp[17] = 0;  // Ethernet / IPv4
        arp[18] = 6; arp[19] = 4; arp[20] = 0; arp[21] = 1;  // request
        GuestMac.CopyTo(arp, 22);
        byte[] guestIp = [10, 0, 2, 15], gatewayIp = [10, 0, 2, 2];
        guestIp.CopyTo(arp, 28);
        gatewayIp.CopyTo(arp, 38);
        _slirp.Send(arp);

        var reply = Next(f => f.Length >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2);
        Assert.Equal(GuestMac, reply[..6]);                 // to the guest
        Assert.Equal(gatewayIp, reply[28..32]);             // "10.0.2.2 is at ..."
        Assert.Equal(reply[6..12], reply[22..28]);          // ... the sender's own MAC
        Assert.Equal(GuestMac, reply[32..38]);
        Assert.Equal(guestIp, reply[38..42]);
    }

    [Fact]
    public void The_built_in_dhcp_server_offers_10_0_2_15_with_gateway_and_dns()
    {
        _slirp.Send(DhcpDiscover(0x1234_5678));
        var offer = Next(f => f.Length > 282 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 17
                              && BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(36)) == 68);
        var bootp = offer.AsSpan(42);
        Assert.Equal(2, bootp[0]);                                            // BOOTREPLY
        Assert.Equal(0x1234_5678u, BinaryPrimitives.ReadUInt32BigEndian(bootp[4..]));
        Assert.Equal(new byte[] { 10, 0, 2, 15 }, bootp.Slice(16, 4).ToArray()); // yiaddr
        var options = ParseOptions(bootp[236..]);
        Assert.Equal(new byte[] { 2 }, options[53]);                           // DHCPOFFER
        Assert.Equal(new byte[] { 255, 255, 255, 0 }, options[1]);
        Assert.Equal(new byte[] { 10, 0, 2, 2 }, options[3]);                  // router
        Assert.Equal(new byte[] { 10, 0, 2, 3 }, options[6]);                  // DNS
    }

    [Fact]
    public void Frames_sent_after_dispose_are_ignored()
    {
        var s = new SlirpBackend();
        s.Start(_ => { });
        s.Dispose();
        s.Send(new byte[60]);
        s.Dispose();
    }

    private static Dictionary<byte, byte[]> ParseOptions(ReadOnlySpan<byte> o)
    {
        Assert.Equal(0x63825363u, BinaryPrimitives.ReadUInt32BigEndian(o)); // magic cookie
        var result = new Dictionary<byte, byte[]>();
        for (int i = 4; i < o.Length && o[i] != 255;)
        {
            if (o[i] == 0) { i++; continue; }
            result[o[i]] = o.Slice(i + 2, o[i + 1]).ToArray();
            i += 2 + o[i + 1];
        }
        return result;
    }

    private static byte[] DhcpDiscover(uint xid)
    {
        var bootp = new byte[300];
        bootp[0] = 1; bootp[1] = 1; bootp[2] = 6;                 // BOOTREQUEST, Ethernet
        BinaryPrimitives.WriteUInt32BigEndian(bootp.AsSpan(4), xid);
        GuestMac.CopyTo(bootp, 28);
        BinaryPrimitives.WriteUInt32BigEndian(bootp.AsSpan(236), 0x63825363);
        byte[] opts = [53, 1, 1, 255];                            // DHCPDISCOVER
        opts.CopyTo(bootp, 240);

        int udpLen = 8 + bootp.Length, ipLen = 20 + udpLen;
        var f = new byte[14 + ipLen];
        for (int i = 0; i < 6; i++) f[i] = 0xff;
        GuestMac.CopyTo(f, 6);
        f[12] = 0x08; f[13] = 0x00;
        var ip = f.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)ipLen);
        ip[8] = 64; ip[9] = 17;                                   // TTL, UDP
        ip[16] = ip[17] = ip[18] = ip[19] = 255;                  // 0.0.0.0 -> 255.255.255.255
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(ip));
        var udp = f.AsSpan(34, 8);
        BinaryPrimitives.WriteUInt16BigEndian(udp, 68);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], 67);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udpLen); // checksum 0: none
        bootp.CopyTo(f, 42);
        return f;
    }

    private static ushort Checksum(ReadOnlySpan<byte> header)
    {
        uint sum = 0;
        for (int i = 0; i < header.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(header[i..]);
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }
}
