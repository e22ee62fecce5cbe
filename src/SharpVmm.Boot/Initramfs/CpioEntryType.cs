namespace SharpVmm.Boot.Initramfs;

/// <summary>The file types an initramfs entry can have; values are the S_IFMT bits of st_mode.</summary>
public enum CpioEntryType
{
    Directory = 0x4000,
    RegularFile = 0x8000,
    Symlink = 0xA000,
    CharacterDevice = 0x2000,
    BlockDevice = 0x6000,
}
