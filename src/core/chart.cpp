#include "mtrec/core/chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace mtrec {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

std::string svg_line_chart(const std::string& title, const std::map<std::string, std::vector<double>>& series,
                           const std::string& x_label) {
  const double w = 480, h = 240, l = 56, r = 12, top = 28, bottom = 32;
  double lo = INFINITY, hi = -INFINITY;
  size_t n = 0;
  for (const auto& [name, ys] : series) {
    n = std::max(n, ys.size());
    for (double y : ys)
      if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y);
  }
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' viewBox='0 0 {} {}' role='img'>"
      "<title>{}</title><rect width='100%' height='100%' fill='#fff'/>"
      "<text x='{}' y='18' font-size='13' font-family='sans-serif'>{}</text>",
      w, h, w, h, html_escape(title), l, html_escape(title));
  if (n == 0 || !std::isfinite(lo)) return svg + "<text x='60' y='120' font-size='12'>no data yet</text></svg>";
  if (hi - lo < 1e-12) hi = lo + 1e-12 + std::fabs(lo) * 1e-3;
  auto px = [&](size_t i) { return l + (w - l - r) * (n == 1 ? 0.5 : static_cast<double>(i) / (n - 1)); };
  auto py = [&](double y) { return top + (h - top - bottom) * (1 - (y - lo) / (hi - lo)); };
  svg += fmt::format("<line x1='{}' y1='{}' x2='{}' y2='{}' stroke='#999'/>", l, h - bottom, w - r, h - bottom);
  svg += fmt::format("<line x1='{}' y1='{}' x2='{}' y2='{}' stroke='#999'/>", l, top, l, h - bottom);
  for (int k = 0; k <= 4; ++k) {
    double y = lo + (hi - lo) * k / 4;
    svg +=
        fmt::format("<text x='{}' y='{:.1f}' font-size='10' text-anchor='end' font-family='sans-serif'>{:.4g}</text>",
                    l - 4, py(y) + 3, y);
  }
  svg += fmt::format("<text x='{}' y='{}' font-size='10' text-anchor='middle' font-family='sans-serif'>{} 1..{}</text>",
                     (l + w - r) / 2, h - 8, html_escape(x_label), n);
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"};
  size_t c = 0;
  for (const auto& [name, ys] : series) {
    std::string pts;
    for (size_t i = 0; i < ys.size(); ++i)
      if (std::isfinite(ys[i])) pts += fmt::format("{:.1f},{:.1f} ", px(i), py(ys[i]));
    const char* col = colours[c % 7];
    svg += fmt::format("<polyline fill='none' stroke='{}' stroke-width='2' points='{}'/>", col, pts);
    svg += fmt::format("<text x='{}' y='{}' font-size='11' fill='{}' font-family='sans-serif'>{}</text>", w - r - 150,
                       top + 14 * (c + 1), col, html_escape(name));
    ++c;
  }
  return svg + "</svg>";
}

}  // namespace mtrec
