#pragma once
// Self-contained SVG line charts for the HTML reports (training, policy learning).
//   std::string svg = mtrec::svg_line_chart("loss", {{"train", {0.9, 0.7, 0.6}}}, "epoch");
#include <map>
#include <string>
#include <vector>

namespace mtrec {

/// `s` with <, >, & and " escaped for HTML text and attributes.
std::string html_escape(const std::string& s);
/// One chart, one polyline per series over the points' indices (x axis "x_label 1..n"), non-finite
/// points skipped, the y range from the data.
std::string svg_line_chart(const std::string& title, const std::map<std::string, std::vector<double>>& series,
                           const std::string& x_label);

}  // namespace mtrec
