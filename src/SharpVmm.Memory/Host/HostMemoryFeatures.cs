using SharpVmm.Memory.Host;

namespace SharpVmm.Memory;

/// <summary>Checks that what guest RAM was asked to use exists on this host, so nothing asked for is silently ignored.</summary>
internal static class HostMemoryFeatures
{
    public static void RequireTransparentHugePages()
    {
        switch (TransparentHugePages.Mode())
        {
            case null:
                throw new GuestMemoryException($"hugepages=on: this host has no transparent huge pages ({TransparentHugePages.EnabledPath} "
                    + "is missing: the kernel lacks CONFIG_TRANSPARENT_HUGEPAGE); drop hugepages=on");
            case "never":
                throw new GuestMemoryException($"hugepages=on: transparent huge pages are disabled on this host ({TransparentHugePages.EnabledPath} "
                    + $"is 'never'); as root: echo madvise > {TransparentHugePages.EnabledPath}, or drop hugepages=on");
        }
    }
}
