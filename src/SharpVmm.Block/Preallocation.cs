namespace SharpVmm.Block;

/// <summary>qemu-img's preallocation modes.</summary>
public enum Preallocation { Off, Metadata, Falloc, Full }
