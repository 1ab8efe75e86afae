stack "broken" {
  jobs = []
}
