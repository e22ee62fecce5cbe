namespace SharpVmm.Devices.Legacy;

/// <summary>What platform devices may ask of the machine: the hardware's power and reset lines.</summary>
public interface IVmControl
{
    /// <summary>The guest powered off (ACPI S5, or the debug-exit port with its exit code).</summary>
    void RequestPowerOff(int exitCode);

    /// <summary>The guest pulled the reset line (i8042 0xFE, ACPI reset register).</summary>
    void RequestReset();
}
