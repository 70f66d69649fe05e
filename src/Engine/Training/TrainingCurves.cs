using System.Globalization;
using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.Training;

/// <summary>The PNG of a run's curves: loss (left) and AUC (right) per epoch, training and validation.</summary>
public static class TrainingCurves
{
    private static readonly (byte R, byte G, byte B) TrainColour = (31, 119, 180);
    private static readonly (byte R, byte G, byte B) ValidationColour = (255, 127, 14);
    private static readonly (byte R, byte G, byte B) Ink = (40, 40, 40);
    private static readonly (byte R, byte G, byte B) Grid = (225, 225, 225);

    /// <summary>Renders the curves of <paramref name="history"/> as PNG bytes (960 x 400).</summary>
    public static byte[] Render(IReadOnlyList<EpochMetrics> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var canvas = new DrawingCanvas(960, 400, (255, 255, 255));
        double[] epochs = [.. history.Select(h => (double)h.Epoch)];
        Panel(canvas, 0, "loss", epochs, [.. history.Select(h => h.Train.Loss)], [.. history.Select(h => h.Validation.Loss)], fixedRange: null);
        Panel(canvas, 480, "AUC", epochs, [.. history.Select(h => h.Train.Auc)], [.. history.Select(h => h.Validation.Auc)], fixedRange: (0, 1));
        return ImageCodec.EncodePng(canvas.ToRaster());
    }

    private static void Panel(DrawingCanvas canvas, int left, string title, double[] x, double[] train, double[] validation, (double Low, double High)? fixedRange)
    {
        const int Top = 40, Bottom = 340, MarginLeft = 60, Width = 390;
        int x0 = left + MarginLeft, x1 = x0 + Width;
        var finite = train.Concat(validation).Where(double.IsFinite).ToList();
        (double low, double high) = fixedRange ?? (finite.Count == 0 ? (0, 1) : (Math.Min(0, finite.Min()), finite.Max()));
        if (high <= low)
        {
            high = low + 1;
        }

        double xLow = x.Length == 0 ? 1 : x.Min(), xHigh = x.Length <= 1 ? xLow + 1 : x.Max();
        double Px(double value) => x0 + ((value - xLow) / (xHigh - xLow) * Width);
        double Py(double value) => Bottom - ((value - low) / (high - low) * (Bottom - Top));

        for (int tick = 0; tick <= 4; tick++)
        {
            double value = low + ((high - low) * tick / 4);
            int y = (int)Math.Round(Py(value));
            canvas.DrawLine(x0, y, x1, y, Grid);
            canvas.DrawText(value.ToString("0.##", CultureInfo.InvariantCulture), x0 - 6, y - 8, Ink, "sans 9", anchorRight: true);
        }

        canvas.DrawLine(x0, Top, x0, Bottom, Ink);
        canvas.DrawLine(x0, Bottom, x1, Bottom, Ink);
        canvas.DrawText(xLow.ToString("0", CultureInfo.InvariantCulture), x0, Bottom + 4, Ink, "sans 9");
        canvas.DrawText(xHigh.ToString("0", CultureInfo.InvariantCulture), x1, Bottom + 4, Ink, "sans 9", anchorRight: true);
        canvas.DrawText("epoch", x0 + (Width / 2) - 16, Bottom + 20, Ink, "sans 10");
        canvas.DrawText(title, x0, 12, Ink, "sans bold 12");
        Curve(canvas, x, train, Px, Py, TrainColour);
        Curve(canvas, x, validation, Px, Py, ValidationColour);
        canvas.FillRectangle(x1 - 170, 14, 14, 4, TrainColour);
        canvas.DrawText("train", x1 - 152, 8, Ink, "sans 9");
        canvas.FillRectangle(x1 - 100, 14, 14, 4, ValidationColour);
        canvas.DrawText("validation", x1 - 82, 8, Ink, "sans 9");
    }

    private static void Curve(DrawingCanvas canvas, double[] x, double[] y, Func<double, double> px, Func<double, double> py, (byte R, byte G, byte B) colour)
    {
        for (int i = 0; i < x.Length; i++)
        {
            if (!double.IsFinite(y[i]))
            {
                continue;
            }

            canvas.FillRectangle((int)Math.Round(px(x[i])) - 2, (int)Math.Round(py(y[i])) - 2, 5, 5, colour);
            if (i > 0 && double.IsFinite(y[i - 1]))
            {
                canvas.DrawLine(px(x[i - 1]), py(y[i - 1]), px(x[i]), py(y[i]), colour, thickness: 2);
            }
        }
    }
}
