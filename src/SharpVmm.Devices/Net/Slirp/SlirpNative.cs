using System.Net;
using System.Runtime.InteropServices;

namespace SharpVmm.Devices.Net.Slirp;

/// <summary>
/// libslirp 4.x (Debian's libslirp0, <c>libslirp.so.0</c>) as declared in libslirp.h. Structures are laid out by hand
/// for x86-64 and checked against the C compiler's offsets for libslirp 4.7 (SlirpConfig version 4: 184 bytes).
/// </summary>
internal static partial class SlirpNative
{
    public const string Library = "libslirp.so.0";
    public const uint ConfigVersion = 4;
    public const int PollIn = 1, PollOut = 2, PollPri = 4, PollErr = 8, PollHup = 16;

    [StructLayout(LayoutKind.Sequential)]
    public struct In6Addr
    {
        public uint W0, W1, W2, W3;

        public static In6Addr From(IPAddress a)
        {
            var b = a.GetAddressBytes();
            return new In6Addr { W0 = BitConverter.ToUInt32(b, 0), W1 = BitConverter.ToUInt32(b, 4), W2 = BitConverter.ToUInt32(b, 8), W3 = BitConverter.ToUInt32(b, 12) };
        }
    }

    /// <summary>struct SlirpConfig, version 4. Addresses are in network byte order (struct in_addr); bools are one byte.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 184)]
    public struct Config
    {
        [FieldOffset(0)] public uint Version;
        [FieldOffset(4)] public int Restricted;
        [FieldOffset(8)] public byte InEnabled;
        [FieldOffset(12)] public uint VNetwork;
        [FieldOffset(16)] public uint VNetmask;
        [FieldOffset(20)] public uint VHost;
        [FieldOffset(24)] public byte In6Enabled;
        [FieldOffset(28)] public In6Addr VPrefixAddr6;
        [FieldOffset(44)] public byte VPrefixLen;
        [FieldOffset(48)] public In6Addr VHost6;
        [FieldOffset(64)] public nint VHostname;
        [FieldOffset(72)] public nint TftpServerName;
        [FieldOffset(80)] public nint TftpPath;
        [FieldOffset(88)] public nint Bootfile;
        [FieldOffset(96)] public uint VDhcpStart;
        [FieldOffset(100)] public uint VNameserver;
        [FieldOffset(104)] public In6Addr VNameserver6;
        [FieldOffset(120)] public nint VDnsSearch;
        [FieldOffset(128)] public nint VDomainName;
        [FieldOffset(136)] public nuint IfMtu;
        [FieldOffset(144)] public nuint IfMru;
        [FieldOffset(152)] public byte DisableHostLoopback;
        [FieldOffset(153)] public byte EnableEmu;
        [FieldOffset(160)] public nint OutboundAddr;
        [FieldOffset(168)] public nint OutboundAddr6;
        [FieldOffset(176)] public byte DisableDns;
        [FieldOffset(177)] public byte DisableDhcp;
    }

    /// <summary>struct SlirpCb: function pointers. libslirp keeps the pointer to it, so it must not move.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Callbacks
    {
        public nint SendPacket;
        public nint GuestError;
        public nint ClockGetNs;
        public nint TimerNew;
        public nint TimerFree;
        public nint TimerMod;
        public nint RegisterPollFd;
        public nint UnregisterPollFd;
        public nint Notify;
        public nint InitCompleted;
        public nint TimerNewOpaque;
    }

    [LibraryImport(Library)]
    public static partial nint slirp_new(nint config, nint callbacks, nint opaque);

    [LibraryImport(Library)]
    public static partial void slirp_cleanup(nint slirp);

    [LibraryImport(Library)]
    public static partial void slirp_pollfds_fill(nint slirp, ref uint timeout, nint addPoll, nint opaque);

    [LibraryImport(Library)]
    public static partial void slirp_pollfds_poll(nint slirp, int selectError, nint getRevents, nint opaque);

    [LibraryImport(Library)]
    public static partial void slirp_input(nint slirp, ref byte packet, int length);

    [LibraryImport(Library)]
    public static partial nint slirp_version_string();

    /// <summary>An IPv4 address as struct in_addr's s_addr (network byte order in memory).</summary>
    public static uint InAddr(IPAddress a) => BitConverter.ToUInt32(a.GetAddressBytes(), 0);
}
