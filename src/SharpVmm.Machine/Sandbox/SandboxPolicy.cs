namespace SharpVmm.Machine.Sandbox;

/// <summary>
/// What the VMM process may ask of the kernel once its VM is built: every thread kind (vCPUs, device I/O threads,
/// the timer thread, QMP and migration on the thread pool, and the .NET runtime's own GC, finalizer, tiered-JIT
/// and signal threads) shares one list, because the runtime moves work between threads freely. Anything not
/// named here is refused; the groups say which part needs what, so an addition has to say why.
/// </summary>
public static class SandboxPolicy
{
    /// <summary>Allowed whatever their arguments. The most frequent calls first: the filter tests in this order.</summary>
    public static readonly string[] Unconditional =
    [
        // Hot paths: KVM_RUN and device ioctls, futex wake-ups, virtio-blk and net I/O, timers, polls.
        "ioctl", "futex", "read", "write", "pread64", "pwrite64", "preadv", "pwritev", "readv", "writev",
        "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll", "ppoll", "clock_nanosleep", "nanosleep",
        "sched_yield", "timerfd_settime", "timerfd_gettime", "clock_gettime", "clock_getres", "gettimeofday",
        "madvise", "mmap", "munmap", "mprotect", "mremap", "membarrier",
        // Files opened after start: snapshot-save and migration files, --restore's pages, disk flushes and locks
        // (OFD locks through fcntl), pidfiles, QMP's getfd/add-fd descriptors.
        "openat", "open", "close", "lseek", "fstat", "newfstatat", "stat", "lstat", "statx", "fstatfs", "statfs",
        "fcntl", "flock", "fsync", "fdatasync", "ftruncate", "fallocate", "fadvise64", "dup", "dup2", "dup3",
        "unlink", "unlinkat", "rename", "renameat", "renameat2", "readlink", "readlinkat", "getdents64",
        "access", "faccessat", "faccessat2", "getcwd", "copy_file_range", "sync_file_range", "umask", "fchmod",
        // Sockets: QMP (UNIX, loopback TCP), migration, the serial/console unix backends, libslirp.
        "connect", "accept", "accept4", "bind", "listen", "getsockname", "getpeername", "setsockopt", "getsockopt",
        "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "socketpair",
        // Event sources: the timer thread, eventfds for ioeventfd/irqfd and wake-ups, pipes.
        "epoll_create1", "eventfd2", "timerfd_create", "pipe2", "pipe",
        // The emulator's second tier: code buffers double-mapped through a memfd (and .NET's W^X mapper).
        "memfd_create", "msync", "mincore",
        // Threads (clone itself is checked below), signals, and what the runtime and glibc ask on every thread.
        "set_robust_list", "rseq", "gettid", "getpid", "getppid", "exit", "exit_group", "restart_syscall",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "sched_getaffinity",
        "sched_getparam", "sched_getscheduler", "getcpu", "prctl", "arch_prctl", "brk", "getrusage", "getrlimit",
        "getuid", "geteuid", "getgid", "getegid", "uname", "sysinfo", "getrandom", "getpriority", "times",
        "sched_get_priority_max", "sched_get_priority_min", "getsid",
    ];

    /// <summary>socket() families: local sockets and IPv4/IPv6 (tap's interface ioctls go through an AF_INET socket).</summary>
    public static readonly ulong[] SocketFamilies = [1 /* AF_UNIX */, 2 /* AF_INET */, 10 /* AF_INET6 */, 16 /* AF_NETLINK: if_nametoindex, getaddrinfo */];

    /// <summary>Refused with ENOSYS rather than trapped: glibc then falls back to clone, whose flags we can read (clone3's are in memory).</summary>
    public static readonly string[] Enosys = ["clone3"];

    public const ulong CloneThread = 0x0001_0000;

    /// <summary>
    /// QEMU's -sandbox groups (7.2's deny-list, by its key names) and the x86-64 calls each covers. None is on the
    /// allow-list above, so this filter refuses every group whatever -sandbox says, except for
    /// <see cref="QemuGroupExceptions"/>; the tests check both against the BPF program.
    /// </summary>
    public static readonly (string Key, string[] Calls)[] QemuGroups =
    [
        ("obsolete", ["_sysctl", "uselib", "ustat", "sysfs", "create_module", "get_kernel_syms", "query_module"]),
        ("elevateprivileges", ["setuid", "setgid", "setpgid", "setsid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid"]),
        ("spawn", ["fork", "vfork", "execve", "execveat", "setns", "unshare"]),
        ("resourcecontrol", ["setpriority", "sched_setparam", "sched_setscheduler", "sched_setaffinity"]),
    ];

    /// <summary>
    /// Where this filter is narrower than QEMU's resourcecontrol=deny: the .NET runtime sets up each thread it
    /// starts (the process's CPU set, the default policy), so a thread may set its own affinity and SCHED_OTHER; no
    /// thread can become real-time, change priorities, or change another thread's or process's scheduling.
    /// (Spawn's clone is allowed for threads only, as in QEMU.)
    /// </summary>
    public static readonly (string Call, string Allowed)[] QemuGroupExceptions =
    [
        ("sched_setaffinity", "on the calling thread (pid 0)"),
        ("sched_setscheduler", "to SCHED_OTHER"),
    ];
}
