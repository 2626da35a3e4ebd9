// Collects every error the page meets (script errors, failed resource loads, rejected promises,
// console.error) so that a browser test can read them from window.studioErrors.
window.studioErrors = [];
window.addEventListener('error', function (e) {
  var what = e.message || (e.target && (e.target.src || e.target.href)) || 'error';
  window.studioErrors.push(String(what));
}, true);
window.addEventListener('unhandledrejection', function (e) {
  window.studioErrors.push('unhandled rejection: ' + (e.reason && e.reason.message ? e.reason.message : e.reason));
});
(function () {
  var original = console.error;
  console.error = function () {
    window.studioErrors.push(Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
})();
