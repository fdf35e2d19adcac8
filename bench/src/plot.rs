//! SVG plots from `fanout.json`: delivered messages per second and p99 latency against the
//! connection count, one line per (server, pace).

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::fanout::{FanoutRun, Mode};

#[derive(serde::Deserialize)]
struct FanoutFile {
    runs: Vec<FanoutRun>,
}

type Series = (String, Vec<(f64, f64)>, RGBColor, bool);

fn series(runs: &[FanoutRun], value: impl Fn(&FanoutRun) -> f64) -> Vec<Series> {
    let mut out = Vec::new();
    for (server, color) in [
        ("pitchey", RGBColor(0xd9, 0x5f, 0x02)),
        ("node", RGBColor(0x1b, 0x9e, 0x77)),
    ] {
        for (mode, dashed) in [(Mode::Burst, false), (Mode::Spaced, true)] {
            let mut pts: Vec<(f64, f64)> = runs
                .iter()
                .filter(|r| r.server == server && r.mode == mode)
                .map(|r| (r.conns as f64, value(r)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if !pts.is_empty() {
                let pace = format!("{mode:?}").to_lowercase();
                out.push((format!("{server} {pace}"), pts, color, dashed));
            }
        }
    }
    out
}

fn chart(path: &Path, title: &str, y_label: &str, data: &[Series]) -> anyhow::Result<()> {
    let (x_max, y_max) = data
        .iter()
        .flat_map(|(_, pts, _, _)| pts.iter())
        .fold((0f64, 0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max * 1.05, 0f64..y_max * 1.1)?;
    c.configure_mesh()
        .x_desc("connected clients")
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (name, pts, color, dashed) in data {
        let style = ShapeStyle::from(color).stroke_width(2);
        if *dashed {
            // Dashed by drawing every other segment of a finely cut line.
            let mut fine = Vec::new();
            for w in pts.windows(2) {
                for i in 0..20 {
                    let t = f64::from(i) / 20.0;
                    fine.push((
                        w[0].0 + (w[1].0 - w[0].0) * t,
                        w[0].1 + (w[1].1 - w[0].1) * t,
                    ));
                }
            }
            fine.extend(pts.last());
            c.draw_series(
                fine.chunks(2)
                    .map(|seg| PathElement::new(seg.to_vec(), style)),
            )?;
            c.draw_series(pts.iter().map(|p| Circle::new(*p, 4, style)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], style));
        } else {
            c.draw_series(LineSeries::new(pts.clone(), style))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            c.draw_series(pts.iter().map(|p| Circle::new(*p, 4, style.filled())))?;
        }
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Write `fanout-throughput.svg` and `fanout-p99.svg` beside `fanout.json`.
pub fn draw(results: &Path) -> anyhow::Result<()> {
    let file = results.join("fanout.json");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let parsed: FanoutFile = serde_json::from_str(&text)?;
    let out = results.join("fanout-throughput.svg");
    chart(
        &out,
        "Announcement fan-out: delivered messages per second",
        "messages / s",
        &series(&parsed.runs, |r| r.msgs_per_sec),
    )?;
    println!("wrote {}", out.display());
    let out = results.join("fanout-p99.svg");
    chart(
        &out,
        "Announcement fan-out: p99 latency, POST to receipt",
        "p99 latency (ms)",
        &series(&parsed.runs, |r| r.latency.p99_ms),
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
