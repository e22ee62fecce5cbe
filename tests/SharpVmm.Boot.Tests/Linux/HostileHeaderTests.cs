using SharpVmm.Boot.Linux;
using SharpVmm.Memory;

namespace SharpVmm.Boot.Tests.Linux;

/// <summary>Damaged or hostile bzImage headers end in a BootException, never in another exception or a stray write.</summary>
public sealed class HostileHeaderTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.Create(64 << 20);

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void Random_header_corruption_is_either_loaded_or_refused_cleanly()
    {
        var rng = new Random(20261124);
        var good = new SyntheticBzImage { InitSize = 0x10_0000 }.Build();
        int loaded = 0, refused = 0;
        for (int round = 0; round < 3000; round++)
        {
            var image = (byte[])good.Clone();
            int flips = rng.Next(1, 6);
            for (int k = 0; k < flips; k++)
                image[rng.Next(0x1F1, 0x270)] = (byte)rng.Next(256);
            if (rng.Next(4) == 0) Array.Resize(ref image, rng.Next(0, image.Length));
            try
            {
                LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image, Initrd = new byte[4096], CommandLine = "x" });
                loaded++;
            }
            catch (BootException)
            {
                refused++;
            }
        }
        Assert.True(loaded > 0 && refused > 0, $"both outcomes expected: {loaded} loaded, {refused} refused");
    }

    [Theory]
    [InlineData(0xFFFF_FFFF_FFFF_F000UL)]
    [InlineData(0x8000_0000_0000_0000UL)]
    public void A_pref_address_near_the_top_of_the_address_space_is_refused(ulong pref)
    {
        var image = new SyntheticBzImage { PrefAddress = pref, InitSize = 0x2000 }.Build();
        Assert.Throws<BootException>(() => LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image }));
    }

    [Fact]
    public void A_huge_init_size_is_refused_as_too_little_RAM()
    {
        var image = new SyntheticBzImage { InitSize = 0xFFFF_FFFF }.Build();
        Assert.Contains("more memory", Assert.Throws<BootException>(() => LinuxLoader.Load(_memory, new LinuxBootSpec { Kernel = image })).Message);
    }
}
