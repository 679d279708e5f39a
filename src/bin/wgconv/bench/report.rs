//! `wgconv bench`'s output: the table, adapters side by side, JSON and the SVG plot.

use super::*;

pub fn print_rows(rows: &[Row]) {
    println!(
        "{:<26} {:<8} {:>11} {:>11} {:>11} {:>10} {:>10} {:>8} {:>13}",
        "layer",
        "op",
        "kernel ms",
        "wall ms",
        "cpu ms",
        "gpu rate",
        "cpu rate",
        "gpu/cpu",
        "allocs 1st/rep"
    );
    let na = || "n/a".to_string();
    for r in rows {
        let unit = if r.is_bytes { "GB/s" } else { "GFLOP/s" };
        println!(
            "{:<26} {:<8} {:>11} {:>11.3} {:>11} {:>10.2} {:>10} {:>8} {:>13}  {unit}",
            r.layer,
            r.op,
            r.kernel
                .map_or_else(na, |k| format!("{:.3}", k.as_secs_f64() * 1e3)),
            r.wall.as_secs_f64() * 1e3,
            r.cpu
                .map_or_else(na, |c| format!("{:.3}", c.as_secs_f64() * 1e3)),
            r.rate(r.gpu_time()),
            r.cpu.map_or_else(na, |c| format!("{:.2}", r.rate(c))),
            r.cpu.map_or_else(na, |c| format!(
                "{:.2}",
                c.as_secs_f64() / r.gpu_time().as_secs_f64()
            )),
            format!("{}/{}", r.allocations.0, r.allocations.1),
        );
    }
    // The suite's total, as the README quotes it (the CPU's backward is split between the dx
    // and dw rows, so it counts once).
    let sum = |f: &dyn Fn(&Row) -> Option<Duration>| -> Option<f64> {
        rows.iter()
            .map(|r| f(r).map(|t| t.as_secs_f64() * 1e3))
            .sum()
    };
    let show = |v: Option<f64>| v.map_or_else(na, |v| format!("{v:.3}"));
    println!(
        "{:<26} {:<8} {:>11} {:>11} {:>11}",
        "total",
        "",
        show(sum(&|r| r.kernel)),
        show(sum(&|r| Some(r.wall))),
        show(sum(&|r| r.cpu)),
    );
    let mut layer = "";
    for r in rows {
        if !r.layer.is_empty() {
            layer = &r.layer;
        }
        let (Some(copy), Some(shader_copy)) = (r.copy, r.shader_copy) else {
            continue;
        };
        let (copy, shader_copy) = (copy.as_secs_f64(), shader_copy.as_secs_f64());
        let time = r.gpu_time().as_secs_f64();
        println!(
            "{:<26} {:<8} {:.1} MB: device copy {:.3} ms ({:.2}x), shader copy {:.3} ms ({:.2}x)",
            layer,
            r.op,
            r.work / 1e6,
            copy * 1e3,
            time / copy,
            shader_copy * 1e3,
            time / shader_copy
        );
    }
    let first: u64 = rows.iter().map(|r| r.allocations.0).sum();
    let repeats: u64 = rows.iter().map(|r| r.allocations.1).sum();
    println!(
        "buffer allocations: {first} in warm-up calls, {repeats} in timed repeats (pooled buffers are reused)"
    );
    println!("gpu rate from kernel time (timestamp queries on a hardware GPU; on a CPU adapter the wall clock around each submission, queue drained; wall time where neither); wall: upload + op + readback; cpu: im2col path (dx/dw share one im2col backward), pooling: reference loops");
}

/// Every adapter's rows side by side: per adapter its GPU time (kernel time, or wall time
/// marked `w` where it gives no kernel time) and rate, then the CPU's once.
pub(super) fn print_side_by_side(gpus: &[Gpu], runs: &[Vec<Row>]) {
    adapters::print_legend(gpus);
    let mut header = format!("{:<26} {:<8}", "layer", "op");
    for i in 0..gpus.len() {
        header.push_str(&format!(
            " | {:>11} {:>9}",
            format!("{} ms", adapters::tag(i)),
            "rate"
        ));
    }
    header.push_str(&format!(" | {:>11} {:>9}", "cpu ms", "rate"));
    println!("{header}");
    let ms = |r: &Row| match r.kernel {
        Some(k) => format!("{:.3}", k.as_secs_f64() * 1e3),
        None => format!("{:.3}w", r.wall.as_secs_f64() * 1e3),
    };
    let Some(first) = runs.first() else {
        return;
    };
    for (k, r0) in first.iter().enumerate() {
        let mut line = format!("{:<26} {:<8}", r0.layer, r0.op);
        for rows in runs {
            match rows.get(k) {
                Some(r) => {
                    line.push_str(&format!(" | {:>11} {:>9.2}", ms(r), r.rate(r.gpu_time())))
                }
                None => line.push_str(&format!(" | {:>11} {:>9}", "n/a", "")),
            }
        }
        match r0.cpu {
            Some(c) => line.push_str(&format!(
                " | {:>11.3} {:>9.2}",
                c.as_secs_f64() * 1e3,
                r0.rate(c)
            )),
            None => line.push_str(&format!(" | {:>11} {:>9}", "n/a", "")),
        }
        line.push_str(if r0.is_bytes { "  GB/s" } else { "  GFLOP/s" });
        println!("{line}");
    }
    let mut total = format!("{:<26} {:<8}", "total", "");
    for rows in runs {
        let sum: f64 = rows.iter().map(|r| r.gpu_time().as_secs_f64()).sum();
        total.push_str(&format!(" | {:>11.3} {:>9}", sum * 1e3, ""));
    }
    let cpu: f64 = first
        .iter()
        .filter_map(|r| r.cpu)
        .map(|c| c.as_secs_f64())
        .sum();
    total.push_str(&format!(" | {:>11.3}", cpu * 1e3));
    println!("{total}");
    println!("ms: kernel time (median; timestamp queries on a hardware GPU, the wall clock around each submission on a CPU adapter); `w`: wall time (upload + op + readback) where the adapter gives no kernel time; rate: GFLOP/s, GB/s for pooling; cpu: im2col path (dx/dw share one im2col backward), pooling: reference loops");
}

/// Each row with the name of its layer (the table leaves it blank after a layer's first row).
pub(super) fn named(rows: &[Row]) -> Vec<(String, &Row)> {
    let mut layer = String::new();
    rows.iter()
        .map(|r| {
            if !r.layer.is_empty() {
                layer = r.layer.clone();
            }
            (layer.clone(), r)
        })
        .collect()
}

/// One entry per adapter; with one adapter also its `adapter`, `rows` and `pool` at the top
/// level, as the file has always had them.
pub(super) fn write_json(
    path: &std::path::Path,
    args: &BenchArgs,
    gpus: &[Gpu],
    runs: &[Vec<Row>],
) -> wgconv::Result<()> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rows_json = |rows: &[Row]| -> Vec<serde_json::Value> {
        named(rows)
            .iter()
            .map(|(layer, r)| {
                serde_json::json!({
                    "layer": layer,
                    "op": r.op,
                    "kernel_ms": r.kernel.map(ms),
                    "wall_ms": ms(r.wall),
                    "cpu_ms": r.cpu.map(ms),
                    "gpu_rate": r.rate(r.gpu_time()),
                    "cpu_rate": r.cpu.map(|c| r.rate(c)),
                    "unit": if r.is_bytes { "GB/s" } else { "GFLOP/s" },
                    "device_copy_ms": r.copy.map(ms),
                    "shader_copy_ms": r.shader_copy.map(ms),
                    "allocations_first_call": r.allocations.0,
                    "allocations_repeats": r.allocations.1,
                })
            })
            .collect()
    };
    let pool_json = |gpu: &Gpu| {
        serde_json::json!({
            "allocations": gpu.pool_stats().allocations,
            "reuses": gpu.pool_stats().reuses,
        })
    };
    let entries: Vec<serde_json::Value> = gpus
        .iter()
        .zip(runs)
        .enumerate()
        .map(|(i, (gpu, rows))| {
            let info = gpu.adapter_info();
            serde_json::json!({
                "index": i + 1,
                "adapter": info.name,
                "backend": info.backend.to_str(),
                "device_type": format!("{:?}", info.device_type),
                "driver": info.driver,
                "driver_info": info.driver_info,
                "kernel_times": rows.iter().all(|r| r.kernel.is_some()),
                "rows": rows_json(rows),
                "pool": pool_json(gpu),
            })
        })
        .collect();
    let mut json = serde_json::json!({
        "suite": format!("{:?}", args.suite),
        "batch": args.batch,
        "repeat": args.repeat,
        "adapters": entries,
    });
    if let ([gpu], [rows]) = (gpus, runs) {
        json["adapter"] = gpu.adapter_info().name.clone().into();
        json["rows"] = rows_json(rows).into();
        json["pool"] = pool_json(gpu);
    }
    let text = serde_json::to_string_pretty(&json).map_err(|e| wgconv::Error::InvalidArgument {
        op: "wgconv bench",
        what: format!("cannot encode the results as JSON: {e}"),
    })?;
    std::fs::write(path, text).map_err(|e| wgconv::Error::InvalidArgument {
        op: "wgconv bench",
        what: format!("cannot write {}: {e}", path.display()),
    })
}

/// Bars of rate per (layer, op): one per adapter, then the CPU's, each with its value, since
/// adapters can differ by orders of magnitude and a short bar alone would say nothing.
pub(super) fn plot(
    path: &std::path::Path,
    labels: &[String],
    runs: &[Vec<Row>],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let rows = named(first);
    let series = runs.len() + 1;
    let bar = 11;
    let row_height = bar * series as i32 + 8;
    let legend_height = 20 * series as i32 + 10;
    let width = 1000;
    let height = 40 + legend_height + row_height * rows.len() as i32;
    let root = SVGBackend::new(path, (width, height.max(1) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    // Dark enough to read on white; the CPU grey, as the single-adapter plot always had it.
    const COLOURS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(23, 190, 207),
        RGBColor(227, 119, 194),
    ];
    let colour = |s: usize| -> RGBColor {
        if s == runs.len() {
            RGBColor(150, 150, 150)
        } else {
            COLOURS[s % COLOURS.len()]
        }
    };
    // Rate of series `s` (an adapter, or the CPU last) on row `k`.
    let rate = |s: usize, k: usize| -> Option<f64> {
        if s == runs.len() {
            first.get(k).and_then(|r| r.cpu.map(|c| r.rate(c)))
        } else {
            runs[s].get(k).map(|r| r.rate(r.gpu_time()))
        }
    };
    let max = (0..rows.len())
        .flat_map(|k| (0..series).filter_map(move |s| rate(s, k)))
        .filter(|v| v.is_finite())
        .fold(1e-9, f64::max);
    let label_width: i32 = 260;
    let scale = f64::from(width as i32 - label_width - 90) / max;
    root.draw(&Text::new(
        "GFLOP/s, or GB/s for pooling (GPU: kernel time, or wall time without one)",
        (10, 10),
        ("sans-serif", 16),
    ))?;
    for s in 0..series {
        let y = 36 + 20 * s as i32;
        root.draw(&Rectangle::new([(10, y), (30, y + 12)], colour(s).filled()))?;
        let name = labels
            .get(s)
            .map_or("CPU (im2col; pooling: reference loops)", |l| l);
        root.draw(&Text::new(name.to_string(), (38, y), ("sans-serif", 12)))?;
    }
    for (k, (layer, r)) in rows.iter().enumerate() {
        let y0 = 40 + legend_height + row_height * k as i32;
        root.draw(&Text::new(
            format!("{layer} {}", r.op),
            (10, y0 + 4),
            ("sans-serif", 12),
        ))?;
        for s in 0..series {
            let Some(v) = rate(s, k) else { continue };
            let y = y0 + bar * s as i32;
            let w = if v.is_finite() { (v * scale) as i32 } else { 0 };
            let x0 = label_width;
            root.draw(&Rectangle::new(
                [(x0, y), (x0 + w.max(1), y + bar - 1)],
                colour(s).filled(),
            ))?;
            root.draw(&Text::new(
                format!("{v:.2}"),
                (x0 + w.max(1) + 4, y),
                ("sans-serif", 10),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}
