namespace GigaPath;

/// <summary>
/// Input refused before any large allocation because what it would cost exceeds a limit: too many pixels, an image
/// too thin to resize, a tile-feature file declaring more tiles than allowed or more data than it can hold. The
/// message names the limit and the option that raises it. A distinct type so the server answers 413 rather than 400.
/// </summary>
public class BudgetExceededException : GigaPathException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the limit and the option that raises it.</summary>
    public BudgetExceededException(string message) : base(message) { }
}
